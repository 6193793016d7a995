"""Oracle test: the real annotations of ../shared/data/coco encoded into
perfect network outputs, then the same aggregation, grouping, inverse
transform and CocoMetric path that `mim test` runs. Any error in the
coordinate conventions (0.5 shifts, 64-alignment, flip, inverse affine)
shows up as lost AP."""
import numpy as np
import pytest
import torch

from higherhrnet_plugin.testing.oracle import PerfectOutputs

from .conftest import TINY_CONFIG, shared_path

def oracle_run(flip_test, aug_scales=None, batch_size=1):
    """COCO AP of the perfect outputs, and the people of every image."""
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
    oracle = PerfectOutputs(model.head.layout.with_ae)
    model.extract_feat = lambda inputs: (inputs, )
    model.head.forward = oracle

    metric = CocoMetric(
        ann_file=str(root / 'test_coco.json'), nms_mode='none',
        score_mode='bbox')
    metric.dataset_meta = dataset.metainfo
    people = []
    for start in range(0, len(dataset), batch_size):
        batch = pseudo_collate([
            dataset[i]
            for i in range(start, min(start + batch_size, len(dataset)))
        ])
        data = model.data_preprocessor(batch, training=False)
        oracle.set_batch(data['inputs'], data['data_samples'])
        with torch.no_grad():
            results = model(**data, mode='predict')
        metric.process(batch, [r.to_dict() for r in results])
        people += [r.pred_instances for r in results]
    return metric.evaluate(len(dataset))['coco/AP'], people


def oracle_ap(flip_test, aug_scales=None):
    return oracle_run(flip_test, aug_scales)[0]


@pytest.mark.parametrize('flip_test', [False, True])
def test_perfect_outputs_give_near_perfect_ap(flip_test):
    assert oracle_ap(flip_test) >= 0.95


def test_perfect_outputs_with_multi_scale_test_pipeline():
    assert oracle_ap(flip_test=True, aug_scales=[2, 0.5]) >= 0.95


def test_perfect_outputs_of_a_padded_batch():
    """All four images (of two input widths) in one padded batch, with flip
    and multi-scale test: the perfect outputs are placed image by image, and
    each image decodes to exactly its people of a batch of one."""
    ap, batched = oracle_run(True, [2, 0.5], batch_size=4)
    _, single = oracle_run(True, [2, 0.5], batch_size=1)
    assert ap >= 0.95
    for got, expected in zip(batched, single):
        np.testing.assert_array_equal(got.keypoints, expected.keypoints)
        np.testing.assert_array_equal(got.keypoint_scores,
                                      expected.keypoint_scores)
