"""``higherhrnet_plugin.apis.draw_prediction``: the drawing of the demo (and
of anything else that draws predictions), at any scale of the image."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData, PixelData
from mmpose.structures import PoseDataSample

from .conftest import TINY_CONFIG


@pytest.fixture(scope='module')
def visualizer():
    from higherhrnet_plugin.apis import build_visualizer, init_model
    return build_visualizer(init_model(str(TINY_CONFIG)), radius=2,
                            line_width=1)


def person(height, width, score=1.0, heatmaps=False):
    """One person with 17 keypoints spread over an image of that size."""
    rng = np.random.default_rng(0)
    keypoints = rng.uniform((5, 5), (width - 5, height - 5), (1, 17, 2))
    sample = PoseDataSample(metainfo=dict(ori_shape=(height, width)))
    sample.pred_instances = InstanceData(
        keypoints=keypoints, keypoint_scores=np.full((1, 17), score))
    if heatmaps:
        maps = torch.zeros(17, height // 2, width // 2)
        maps[3, 10:20, 10:30] = 1
        sample.pred_fields = PixelData(heatmaps=maps)
    return sample


def test_scale_resizes_the_image_and_the_keypoints(visualizer):
    from higherhrnet_plugin.apis import draw_prediction
    image = np.random.default_rng(1).integers(0, 255, (60, 90, 3), np.uint8)
    sample = person(60, 90)
    enlarged = draw_prediction(visualizer, image, sample, scale=2.0)
    assert enlarged.shape == (120, 180, 3)
    by_hand = person(60, 90)
    by_hand.pred_instances.keypoints = sample.pred_instances.keypoints * 2
    expected = draw_prediction(
        visualizer, cv2.resize(image, (180, 120),
                               interpolation=cv2.INTER_LINEAR), by_hand)
    np.testing.assert_array_equal(enlarged, expected)
    shrunk = draw_prediction(visualizer, image, sample, scale=1 / 3)
    assert shrunk.shape == (20, 30, 3)


def test_keypoints_below_the_threshold_are_not_drawn(visualizer):
    from higherhrnet_plugin.apis import draw_prediction
    image = np.full((60, 90, 3), 40, np.uint8)
    faint = draw_prediction(visualizer, image, person(60, 90, score=0.2),
                            kpt_thr=0.3)
    np.testing.assert_array_equal(faint, image)
    drawn = draw_prediction(visualizer, image, person(60, 90, score=0.2),
                            kpt_thr=0.1)
    assert (drawn != image).any(axis=-1).sum() > 17


def test_heatmap_is_drawn_below_when_the_sample_has_one(visualizer):
    from higherhrnet_plugin.apis import draw_prediction
    image = np.full((60, 90, 3), 40, np.uint8)
    with_maps = draw_prediction(visualizer, image,
                                person(60, 90, heatmaps=True),
                                draw_heatmap=True)
    assert with_maps.shape == (120, 90, 3)
    heat = with_maps[60:]
    assert not (heat == heat[0, 0]).all()  # the hot patch shows
    without_maps = draw_prediction(visualizer, image, person(60, 90),
                                   draw_heatmap=True)
    assert without_maps.shape == (60, 90, 3)
