"""HigherHRNetRandomAffine: the official HigherHRNet augmentation draws and
matrices, and BottomupRandomAffine unchanged with sampling='mmpose'."""
from unittest import mock

import cv2
import numpy as np
import pytest
from scipy import stats

from higherhrnet_plugin.datasets.transforms import (AffineDraw,
                                                    HigherHRNetRandomAffine)
from mmpose.datasets.transforms import BottomupRandomAffine
from .conftest import shared_path

OFFICIAL = dict(input_size=(512, 512), shift_factor=0.2,
                scale_factor=(0.75, 1.5), scale_type='short',
                rotate_factor=30)
DRAWS = 20000


def draws(transform, image_side, n=DRAWS):
    np.random.seed(0)
    return [transform._draw_official(image_side) for _ in range(n)]


def test_official_draws_are_uniform_with_integer_shifts_bound_to_the_crop():
    transform = HigherHRNetRandomAffine(**OFFICIAL)
    image_side = 427  # the short side of a 640 x 427 COCO image
    samples = draws(transform, image_side)
    scale = np.array([d.scale_factor for d in samples])
    rotation = np.array([d.rotation for d in samples])
    assert scale.min() >= 0.75 and scale.max() < 1.5
    assert rotation.min() >= -30 and rotation.max() < 30
    assert stats.kstest(scale, stats.uniform(0.75, 0.75).cdf).pvalue > 1e-3
    assert stats.kstest(rotation, stats.uniform(-30, 60).cdf).pvalue > 1e-3
    # shift: integers on {int(-t), ..., int(t) - 1}, t = 0.2 * crop side,
    # the crop side being scale factor * short side (427 * 1.5 -> t 128.1)
    shift = np.array([d.shift for d in samples])
    assert shift.dtype.kind == 'i'
    bound = 0.2 * scale * image_side
    low, high = np.trunc(-bound), np.trunc(bound)
    assert ((shift >= low[:, None]) & (shift < high[:, None])).all()
    assert -128 <= shift.min() <= -120 and 120 <= shift.max() <= 127
    # uniform within each draw's own range, independently in x and y
    position = (shift - low[:, None] + np.random.rand(*shift.shape)) / (
        high - low)[:, None]
    for axis in range(2):
        assert stats.kstest(position[:, axis],
                            stats.uniform.cdf).pvalue > 1e-3
    assert abs(np.corrcoef(shift.T)[0, 1]) < 0.03
    # the shift bound grows with the scale draw (it is relative to the crop)
    small, large = scale < 0.9, scale > 1.35
    assert np.abs(shift[large]).max() > 1.4 * np.abs(shift[small]).max()


@pytest.mark.parametrize('scale_type, side', [('short', 480), ('long', 640)])
def test_crop_side_follows_the_scale_type(scale_type, side):
    transform = HigherHRNetRandomAffine(
        **dict(OFFICIAL, scale_type=scale_type))
    draw = AffineDraw(1.25, 20.0, (17, -11))
    with mock.patch.object(transform, '_draw_official',
                           return_value=draw) as sampler:
        matrix = transform._official_warp((480, 640))
    sampler.assert_called_once_with(side)
    zoom = np.sqrt(np.linalg.det(matrix[:, :2]))
    assert zoom == pytest.approx(512 / (1.25 * side), rel=1e-12)
    # the crop centre, the shifted image centre, lands on the input centre
    centre = matrix @ [320 + 17, 240 - 11, 1]
    np.testing.assert_allclose(centre, [256, 256], atol=1e-9)


def test_probabilities_switch_each_draw_off():
    transform = HigherHRNetRandomAffine(
        **dict(OFFICIAL, scale_prob=0, rotate_prob=0, shift_prob=0))
    assert set(draws(transform, 480, n=50)) == {AffineDraw(1.0, 0.0, (0, 0))}


def test_fixed_draws_give_the_official_matrices_keypoints_and_image():
    from higherhrnet_plugin.testing.official_train_targets import \
        OfficialTrainTargets
    official = OfficialTrainTargets(
        shared_path('fixtures', 'official_train_targets.npz'))
    transform = HigherHRNetRandomAffine(**OFFICIAL)
    rng = np.random.default_rng(0)
    for entry in official.entries:
        h, w = official[f'{entry}_image_size']
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        keypoints = rng.uniform(0, [w, h], (3, 17, 2)).astype(np.float32)
        results = dict(img=image, img_shape=(h, w), keypoints=keypoints,
                       keypoints_visible=np.ones((3, 17), np.float32))
        with mock.patch.object(transform, '_draw_official',
                               return_value=official.draw(entry)):
            results = transform(results)
        stored = official[f'{entry}_mat_input']
        np.testing.assert_allclose(results['warp_mat'], stored, rtol=0,
                                   atol=1e-9, err_msg=entry)
        # keypoints in float64, as the official code maps them
        assert results['keypoints'].dtype == np.float64
        expected = keypoints.astype(np.float64) @ stored[:, :2].T + \
            stored[:, 2]
        np.testing.assert_allclose(results['keypoints'], expected, atol=1e-9)
        np.testing.assert_array_equal(
            results['img'],
            cv2.warpAffine(image, results['warp_mat'], (512, 512)))


def test_mmpose_sampling_is_bottomup_random_affine():
    settings = dict(OFFICIAL, distribution='uniform')
    ours = HigherHRNetRandomAffine(sampling='mmpose', **settings)
    mmpose = BottomupRandomAffine(**settings)
    image = np.zeros((480, 640, 3), np.uint8)
    keypoints = np.random.default_rng(1).uniform(
        0, 480, (2, 17, 2)).astype(np.float32)
    for seed in range(5):
        outputs = []
        for transform in (ours, mmpose):
            np.random.seed(seed)
            outputs.append(transform(dict(
                img=image, img_shape=(480, 640), keypoints=keypoints.copy(),
                keypoints_visible=np.ones((2, 17), np.float32))))
        np.testing.assert_array_equal(outputs[0]['warp_mat'],
                                      outputs[1]['warp_mat'])
        np.testing.assert_array_equal(outputs[0]['keypoints'],
                                      outputs[1]['keypoints'])


@pytest.mark.parametrize('settings, match', [
    (dict(sampling='random'), 'sampling'),
    (dict(input_size=(512, 384)), 'square'),
    (dict(transform_mode='perspective'), 'affine'),
    (dict(clip_border=True), 'clip'),
])
def test_official_sampling_rejects_what_it_cannot_reproduce(settings, match):
    with pytest.raises(ValueError, match=match):
        HigherHRNetRandomAffine(**dict(OFFICIAL, **settings))
