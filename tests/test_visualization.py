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


def two_people(height, width):
    """Two people: the left and the right half of the image."""
    rng = np.random.default_rng(2)
    left = rng.uniform((5, 5), (width / 2 - 5, height - 5), (17, 2))
    right = left + (width / 2, 0)
    sample = PoseDataSample(metainfo=dict(ori_shape=(height, width)))
    sample.pred_instances = InstanceData(
        keypoints=np.stack([left, right]), keypoint_scores=np.ones((2, 17)))
    return sample


def test_person_colours_give_each_person_one_colour(visualizer):
    from higherhrnet_plugin.apis import draw_prediction
    image = np.full((80, 160, 3), 40, np.uint8)
    red, blue = (255, 0, 0), (0, 0, 255)  # RGB
    drawn = draw_prediction(visualizer, image, two_people(80, 160),
                            person_colours=[red, blue])
    changed = (drawn != image).any(axis=-1)
    # BGR drawing: red is (0, 0, 255), blue (255, 0, 0)
    is_red = (drawn == (0, 0, 255)).all(axis=-1)
    is_blue = (drawn == (255, 0, 0)).all(axis=-1)
    assert is_red[:, :80].sum() > 17 and not is_red[:, 80:].any()
    assert is_blue[:, 80:].sum() > 17 and not is_blue[:, :80].any()
    # anti-aliased edges aside, what is drawn is drawn in these two colours
    assert (is_red | is_blue).sum() > 0.5 * changed.sum()
    dataset_colours = draw_prediction(visualizer, image, two_people(80, 160))
    assert not (dataset_colours == drawn).all()


def test_person_colours_keep_the_heatmap_below(visualizer):
    from higherhrnet_plugin.apis import draw_prediction
    image = np.full((60, 90, 3), 40, np.uint8)
    sample = person(60, 90, heatmaps=True)
    coloured = draw_prediction(visualizer, image, sample, draw_heatmap=True,
                               person_colours=[(255, 0, 0)])
    plain = draw_prediction(visualizer, image, sample, draw_heatmap=True)
    assert coloured.shape == plain.shape == (120, 90, 3)
    np.testing.assert_array_equal(coloured[60:], plain[60:])
    assert (coloured[:60] == (0, 0, 255)).all(axis=-1).sum() > 17
