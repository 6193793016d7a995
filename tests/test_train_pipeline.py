"""The training pipeline on real COCO images: targets line up with the
augmented keypoints, and batches mix images with different person counts."""
import numpy as np
import pytest
import torch

from .conftest import TINY_CONFIG, shared_path


@pytest.fixture(scope='module')
def tiny_cfg():
    from mmengine.config import Config
    from mmpose.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(str(TINY_CONFIG))
    root = str(shared_path('data', 'coco')) + '/'
    cfg.train_dataloader.dataset.data_root = root
    return cfg


@pytest.fixture(scope='module')
def dataset(tiny_cfg):
    from mmpose.registry import DATASETS
    return DATASETS.build(tiny_cfg.train_dataloader.dataset)


def keypoints_at_resolution(keypoints, flipped, input_width, width):
    """Where the official training puts input keypoints at one output
    resolution: scaled, and for a flipped sample mirrored about that
    resolution's last column rather than the input's (RandomFlip mirrored
    the input keypoints about input_width - 1)."""
    scale = width / input_width
    level = keypoints * scale
    if flipped:
        unflipped_x = input_width - 1 - keypoints[..., 0]
        level[..., 0] = width - 1 - unflipped_x * scale
    return level.astype(int)


def test_targets_match_the_augmented_keypoints(dataset):
    np.random.seed(0)
    seen_flips = set()
    for _ in range(2):
        for i in range(len(dataset)):
            sample = dataset[i]['data_samples']
            flipped = bool(sample.metainfo['flip'])
            seen_flips.add(flipped)
            keypoints = np.asarray(sample.gt_instances.keypoints, np.float64)
            visible = sample.gt_instances.keypoints_visible
            indices = sample.gt_instance_labels.keypoint_indices.numpy()
            assert len(indices) == len(keypoints)  # every person has a row
            heatmaps = [level.heatmaps.numpy() for level in sample.gt_fields]
            assert [h.shape[1:] for h in heatmaps] == [(64, 64), (128, 128)]
            at64 = keypoints_at_resolution(keypoints, flipped, 256, 64)
            at128 = keypoints_at_resolution(keypoints, flipped, 256, 128)
            for n, k in zip(*np.nonzero(indices[..., 1])):
                x, y = at64[n, k]
                assert visible[n, k] > 0
                assert indices[n, k, 0] == y * 64 + x
                assert heatmaps[0][k, y, x] == pytest.approx(1.0)
                x2, y2 = at128[n, k]
                # (a joint just beyond the input's right border of a flipped
                # sample can be on the 1/4 map but not on the 1/2 map)
                if 0 <= x2 < 128 and 0 <= y2 < 128:
                    assert heatmaps[1][k, y2, x2] == pytest.approx(1.0)
    assert seen_flips == {False, True}


def test_zero_keypoint_people_are_masked(tiny_cfg):
    from mmpose.registry import DATASETS
    cfg = tiny_cfg.train_dataloader.dataset.copy()
    # no augmentation and the whole image in view
    cfg.pipeline = [
        dict(type='LoadImage'),
        dict(type='BottomupRandomAffine', input_size=(256, 256),
             shift_prob=0, scale_prob=0, rotate_prob=0, scale_type='long'),
        *cfg.pipeline[3:]
    ]
    dataset = DATASETS.build(cfg)
    masked_somewhere = False
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        with_segs = dataset.pipeline(dict(info))['data_samples']
        without = dataset.pipeline(dict(info, invalid_segs=[]))['data_samples']
        for level in range(2):
            diff = (without.gt_fields[level].heatmap_mask -
                    with_segs.gt_fields[level].heatmap_mask)
            assert diff.min() >= 0  # segmentations only remove pixels
            if not info['invalid_segs']:
                assert diff.max() == 0
            masked_somewhere |= bool(diff.sum() > 0)
    assert masked_somewhere


def test_batch_of_images_with_different_person_counts_trains(
        tiny_cfg, dataset):
    from mmengine.dataset import pseudo_collate
    from mmpose.registry import MODELS
    model = MODELS.build(tiny_cfg.model)
    model.init_weights()
    counts = [len(dataset[i]['data_samples'].gt_instance_labels)
              for i in range(len(dataset))]
    first, second = 0, counts.index(max(counts))
    assert counts[first] != counts[second]
    batch = pseudo_collate([dataset[first], dataset[second]])
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {
        'loss_heatmap_0', 'loss_heatmap_1', 'loss_pull_0', 'loss_push_0'
    }
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grad = model.head.final_layers[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0
