"""Oracle test: the real annotations of ../shared/data/coco encoded into
perfect network outputs, then the same aggregation, grouping, inverse
transform and CocoMetric path that `mim test` runs. Any error in the
coordinate conventions (0.5 shifts, 64-alignment, flip, inverse affine)
shows up as lost AP."""
import numpy as np
import pytest
import torch

from higherhrnet_plugin.codecs.multi_resolution_ae import gaussian_heatmaps

from .conftest import TINY_CONFIG, shared_path

TAG_SPACING = 3.0  # tags of different people are this far apart
TAG_RADIUS = 4  # pixels of the 1/4 map around a keypoint that hold its tag


class PerfectOutputs:
    """Stands in for backbone + head: given the network input it returns the
    outputs a perfect HigherHRNet would give, drawn from the annotations."""

    def __init__(self, head, sigma=2.0):
        self.head = head
        self.sigma = sigma
        self.inputs = {}  # input (h, w) -> unflipped input tensor
        self.samples = None

    def set_batch(self, inputs, samples):
        inputs = inputs if isinstance(inputs, list) else [inputs]
        self.inputs = {tuple(x.shape[-2:]): x for x in inputs}
        self.samples = samples

    def __call__(self, feats):
        x = feats[-1]
        h, w = x.shape[-2:]
        flipped = not torch.equal(x, self.inputs[(h, w)])
        return [
            torch.from_numpy(out[None]) for out in self._draw(
                self.samples[0], (w, h), flipped)
        ]

    def _draw(self, sample, input_size, flipped):
        meta = sample.metainfo
        keypoints = sample.gt_instances.keypoints.astype(np.float64)
        visible = sample.gt_instances.keypoints_visible.astype(np.float32)
        # image pixels -> this input's pixels (base-scale affine, rescaled)
        base_w = meta['input_size'][0]
        keypoints = (keypoints - meta['input_center'] +
                     meta['input_scale'] / 2) * (
                         np.array(meta['input_size']) / meta['input_scale'])
        keypoints *= input_size[0] / base_w
        if flipped:
            keypoints[..., 0] = input_size[0] - 1 - keypoints[..., 0]
            keypoints = keypoints[:, meta['flip_indices']]
            visible = visible[:, meta['flip_indices']]
        outputs = []
        for level, with_ae in enumerate(self.head.layout.with_ae):
            size = (input_size[0] // 4 * 2**level,
                    input_size[1] // 4 * 2**level)
            level_kpts = keypoints * size[0] / input_size[0]
            maps = [gaussian_heatmaps(level_kpts, visible, size, self.sigma)]
            if with_ae:
                maps.append(self._tags(level_kpts, visible, size))
            outputs.append(np.concatenate(maps))
        return outputs

    @staticmethod
    def _tags(keypoints, visible, size):
        w, h = size
        K = keypoints.shape[1]
        tags = np.zeros((K, h, w), np.float32)
        for n, k in zip(*np.nonzero(visible > 0)):
            x, y = keypoints[n, k].astype(int)
            if 0 <= x < w and 0 <= y < h:
                tags[k, max(0, y - TAG_RADIUS):y + TAG_RADIUS + 1,
                     max(0, x - TAG_RADIUS):x + TAG_RADIUS + 1] = \
                    (n + 1) * TAG_SPACING
        return tags


def oracle_ap(flip_test, aug_scales=None):
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmpose.evaluation import CocoMetric
    from mmpose.registry import DATASETS, MODELS
    from mmpose.utils import register_all_modules
    register_all_modules()
    root = shared_path('data', 'coco')
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model.test_cfg.flip_test = flip_test
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.data_root = str(root) + '/'
    if aug_scales:
        cfg.model.test_cfg.multiscale_test = True
        dataset_cfg.pipeline[1].aug_scales = aug_scales
    dataset = DATASETS.build(dataset_cfg)
    model = MODELS.build(cfg.model)
    model.eval()
    oracle = PerfectOutputs(model.head)
    model.extract_feat = lambda inputs: (inputs, )
    model.head.forward = oracle

    metric = CocoMetric(
        ann_file=str(root / 'test_coco.json'), nms_mode='none',
        score_mode='bbox')
    metric.dataset_meta = dataset.metainfo
    for i in range(len(dataset)):
        batch = pseudo_collate([dataset[i]])
        data = model.data_preprocessor(batch, training=False)
        oracle.set_batch(data['inputs'], data['data_samples'])
        with torch.no_grad():
            results = model(**data, mode='predict')
        metric.process(batch, [r.to_dict() for r in results])
    return metric.evaluate(len(dataset))['coco/AP']


@pytest.mark.parametrize('flip_test', [False, True])
def test_perfect_outputs_give_near_perfect_ap(flip_test):
    assert oracle_ap(flip_test) >= 0.95


def test_perfect_outputs_with_multi_scale_test_pipeline():
    assert oracle_ap(flip_test=True, aug_scales=[2, 0.5]) >= 0.95
