"""CrowdPose configs group joints as the official implementation does.

The official decoder takes its 17-entry COCO grouping order cut to the
number of joints, so CrowdPose's 14 joints are grouped in the order
``[0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13]``, not in index order; the
official CrowdPose results were produced that way.
"""
import numpy as np
import pytest
from mmengine.config import Config

import higherhrnet_plugin  # noqa: F401  (registers the codec)
from higherhrnet_plugin.codecs.ae_grouping import (COCO_KEYPOINT_ORDER,
                                                   AEGroupingConfig,
                                                   group_keypoints)
from higherhrnet_plugin.testing import shared_path
from higherhrnet_plugin.testing.decoder_cases import tags_to_head_layout
from mmpose.registry import KEYPOINT_CODECS

from .conftest import CONFIGS
from .test_ae_grouping import assert_same_output

OFFICIAL_ORDER = list(COCO_KEYPOINT_ORDER[:14])
CROWDPOSE_CONFIGS = sorted(CONFIGS.glob('crowdpose/*.py'))
MODES = {
    'adjust_refine': dict(adjust=True, refine=True),
    'plain': dict(adjust=False, refine=False),
}


def _codec(config):
    cfg = Config.fromfile(str(config))
    return KEYPOINT_CODECS.build(cfg.model.head.decoder)


def test_both_crowdpose_configs_are_tested():
    assert [p.name for p in CROWDPOSE_CONFIGS] == [
        'higherhrnet_hrnet-w32_8xb24-300e_crowdpose-512x512.py',
        'higherhrnet_hrnet-w48_8xb16-300e_crowdpose-640x640.py'
    ]


@pytest.mark.parametrize('config', CROWDPOSE_CONFIGS, ids=lambda p: p.stem)
def test_config_groups_in_the_official_order(config):
    codec = _codec(config)
    assert codec.grouping.joint_order(14) == OFFICIAL_ORDER
    assert OFFICIAL_ORDER == [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13]


@pytest.mark.parametrize('fixture', [
    'official_crowdpose_decoder_cases.npz',
    'official_crowdpose_decoder_cases_munkres114.npz'
])
@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('config', CROWDPOSE_CONFIGS, ids=lambda p: p.stem)
def test_config_decoder_reproduces_the_official_outputs(config, mode, fixture):
    codec = _codec(config)
    settings = dict(vars(codec.grouping), **MODES[mode])
    with np.load(shared_path('fixtures', fixture)) as official:
        cases = sorted({k.split('_')[0] for k in official.files})
        assert len(cases) == 4
        for case in cases:
            grouped, scores = group_keypoints(
                official[f'{case}_heatmaps'],
                tags_to_head_layout(official[f'{case}_tags']),
                AEGroupingConfig(**settings))
            assert_same_output((grouped, scores),
                               (official[f'{case}_{mode}_grouped'],
                                official[f'{case}_{mode}_scores']))


def _one_person_maps(tags_by_joint, size=32):
    """Heatmaps (14, size, size) with one peak of value 1 per joint, on a
    diagonal, and tags (14, size, size) (L = 1) holding each joint's tag
    there."""
    heatmaps = np.zeros((14, size, size), np.float32)
    tags = np.zeros((14, size, size), np.float32)
    for k, tag in enumerate(tags_by_joint):
        heatmaps[k, 2 * k + 2, 2 * k + 2] = 1.0
        tags[k, 2 * k + 2, 2 * k + 2] = tag
    return heatmaps, tags


def test_the_order_changes_who_is_grouped():
    """Joint 11 is grouped before joint 7 in the official order: its tag
    (0.9 from the others) joins and moves the mean tag, so joint 7 (1.05 from
    the others) joins too. In index order joint 7 comes first, is 1.05 from
    the mean and starts a second person."""
    tags_by_joint = [0.0] * 14
    tags_by_joint[11], tags_by_joint[7] = 0.9, 1.05
    heatmaps, tags = _one_person_maps(tags_by_joint)
    codec = _codec(CROWDPOSE_CONFIGS[0])
    settings = dict(vars(codec.grouping), adjust=False, refine=False)
    official, _ = group_keypoints(heatmaps, tags,
                                  AEGroupingConfig(**settings))
    by_index, _ = group_keypoints(
        heatmaps, tags,
        AEGroupingConfig(**dict(settings, keypoint_order=list(range(14)))))
    assert len(official) == 1 and (official[0, :, 2] == 1).all()
    assert len(by_index) == 2
