"""Multi-resolution targets of MultiResolutionAssociativeEmbedding."""
import math

import cv2
import numpy as np
import pytest

from higherhrnet_plugin.codecs import MultiResolutionAssociativeEmbedding


def make_codec(**kwargs):
    cfg = dict(input_size=(64, 64), heatmap_sizes=[(16, 16), (32, 32)],
               sigma=2)
    cfg.update(kwargs)
    return MultiResolutionAssociativeEmbedding(**cfg)


def one_person(K=3, xy=(10.7, 21.9)):
    keypoints = np.zeros((1, K, 2), np.float32)
    keypoints[0, 0] = xy
    visible = np.zeros((1, K), np.float32)
    visible[0, 0] = 1
    return keypoints, visible


def test_heatmaps_peak_at_truncated_position_with_same_sigma_everywhere():
    keypoints, visible = one_person()
    encoded = make_codec().encode(keypoints, visible)
    hm16, hm32 = encoded['heatmaps']
    assert hm16.shape == (3, 16, 16) and hm32.shape == (3, 32, 32)
    # input (10.7, 21.9) -> (2.675, 5.475) at 1/4 and (5.35, 10.95) at 1/2
    for hm, (x, y) in ((hm16, (2, 5)), (hm32, (5, 10))):
        assert hm[0, y, x] == pytest.approx(1.0)
        assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (y, x)
        # sigma 2 in pixels of this resolution (not scaled)
        assert hm[0, y, x + 1] == pytest.approx(math.exp(-1 / 8))
        assert hm[0, y + 2, x + 2] == pytest.approx(math.exp(-8 / 8))
        assert hm[1:].max() == 0  # invisible keypoints draw nothing
    # the Gaussian is cut at radius 3 * sigma + 1 = 7 pixels
    assert hm32[0, 10, 5 + 7] > 0 and hm32[0, 10, 5 + 8] == 0


def test_overlapping_people_merge_by_max():
    keypoints = np.array([[[8.0, 8.0]], [[12.0, 8.0]]], np.float32)
    visible = np.ones((2, 1), np.float32)
    hm = make_codec().encode(keypoints, visible)['heatmaps'][0][0]
    # 1/4 resolution: peaks at x = 2 and x = 3, both value 1 (not summed)
    assert hm[2, 2] == pytest.approx(1.0) and hm[2, 3] == pytest.approx(1.0)
    assert hm.max() == pytest.approx(1.0)


def test_keypoint_indices_at_tag_resolution():
    keypoints = np.array([[[10.7, 21.9], [70.0, 5.0], [4.0, 4.0]]],
                         np.float32)
    visible = np.array([[1, 1, 0]], np.float32)
    idx = make_codec().encode(keypoints, visible)['keypoint_indices']
    assert idx.shape == (1, 3, 2)
    assert idx[0, 0].tolist() == [5 * 16 + 2, 1]  # y * W + x at 16x16
    assert idx[0, 1, 1] == 0  # outside the map
    assert idx[0, 2, 1] == 0  # invisible
    idx = make_codec(tag_level=1).encode(keypoints, visible)[
        'keypoint_indices']
    assert idx[0, 0].tolist() == [10 * 32 + 5, 1]


def test_no_people():
    empty = make_codec().encode(np.zeros((0, 3, 2)), np.zeros((0, 3)))
    assert empty['keypoint_indices'].shape == (0, 3, 2)
    assert all(h.max() == 0 for h in empty['heatmaps'])
    assert all(m.min() == 1 for m in empty['heatmap_mask'])


def test_every_person_is_drawn_and_the_first_with_keypoints_are_tagged():
    codec = make_codec(max_num_people=2)
    # person 0 has no visible keypoint (a crowd region's annotation), so
    # persons 1 and 2 take the two tag slots; 3 and 4 are drawn, not tagged
    keypoints = np.stack([np.full((3, 2), 4.0 + 8 * n) for n in range(5)])
    visible = np.ones((5, 3), np.float32)
    visible[0] = 0
    encoded = codec.encode(keypoints.astype(np.float32), visible)
    indices = encoded['keypoint_indices']
    assert indices.shape == (5, 3, 2)  # rows stay aligned with the persons
    assert indices[..., 1].any(axis=1).tolist() == [
        False, True, True, False, False]
    assert not indices[3:].any()
    hm16 = encoded['heatmaps'][0]
    for n in range(1, 5):
        xy = int((4.0 + 8 * n) / 4)
        assert hm16[0, xy, xy] == pytest.approx(1.0), n


def square(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def test_mask_covers_invalid_regions_and_outside_of_image_per_resolution():
    codec = make_codec()
    keypoints, visible = one_person()
    # a crowd region in the left half of a 64x64 image; identity warp
    encoded = codec.encode(
        keypoints, visible, invalid_segs=[square(0, 0, 32, 64)],
        ori_shape=(64, 64))
    m16, m32 = encoded['heatmap_mask']
    assert m16.shape == (16, 16) and m32.shape == (32, 32)
    assert m16[:, :7].max() == 0 and m16[:, 9:].min() == 1
    assert m32[:, :15].max() == 0 and m32[:, 17:].min() == 1
    # an image that covers only the top half of the input after the warp
    half = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    encoded = codec.encode(keypoints, visible, warp_mat=half,
                           ori_shape=(32, 64))
    m16 = encoded['heatmap_mask'][0]
    assert m16[:7].min() == 1 and m16[9:].max() == 0


def test_flipped_keypoints_are_mirrored_per_resolution_or_in_input():
    # RandomFlip put the keypoint at input x' = 10.7, i.e. 63 - 52.3.
    keypoints, visible = one_person()
    output, input_ = (
        make_codec(flip_about=about).encode(
            keypoints, visible, flip=True, flip_direction='horizontal')
        for about in ('output', 'input'))
    # 'output' (official): 52.3 * 16 / 64 = 13.075 at 1/4, mirrored about
    # 15 -> 1.925 (column 1); 52.3 / 2 = 26.15 mirrored about 31 -> 4.85
    # 'input': 10.7 / 4 = 2.675 (column 2) and 10.7 / 2 = 5.35 (column 5)
    for encoded, columns in ((output, (1, 4)), (input_, (2, 5))):
        for hm, x in zip(encoded['heatmaps'], columns):
            assert hm[0].max(axis=0).argmax() == x
    assert output['keypoint_indices'][0, 0].tolist() == [5 * 16 + 1, 1]
    assert input_['keypoint_indices'][0, 0].tolist() == [5 * 16 + 2, 1]


def rotation_about_centre(degrees, size=64):
    c = (size - 1) / 2
    return cv2.getRotationMatrix2D((c, c), degrees, 1.0)


def test_flipped_mask_is_reversed_per_resolution_or_mirrored_in_input():
    keypoints, visible = one_person()
    args = dict(invalid_segs=[square(0, 0, 20, 40)], ori_shape=(64, 64),
                warp_mat=rotation_about_centre(17))
    for about in ('output', 'input'):
        codec = make_codec(flip_about=about)
        plain = codec.encode(keypoints, visible, **args)['heatmap_mask']
        flipped = codec.encode(keypoints, visible, flip=True,
                               flip_direction='horizontal',
                               **args)['heatmap_mask']
        for level, (m, mf) in enumerate(zip(plain, flipped)):
            assert 0 < m.mean() < 1
            if about == 'output':
                np.testing.assert_array_equal(mf, m[:, ::-1])
            else:  # the flip is part of the warp: image -> mirror -> level
                mirror = np.array([[-1, 0, 63], [0, 1, 0], [0, 0, 1.]])
                matrix = mirror @ np.vstack([args['warp_mat'], [0, 0, 1]])
                direct = codec.encode(keypoints, visible, invalid_segs=args[
                    'invalid_segs'], ori_shape=(64, 64), warp_mat=matrix[:2])
                np.testing.assert_array_equal(mf,
                                              direct['heatmap_mask'][level])
                assert (mf != m[:, ::-1]).any()
    with pytest.raises(ValueError, match='horizontal'):
        make_codec().encode(keypoints, visible, flip=True,
                            flip_direction='vertical')
    with pytest.raises(ValueError, match='flip_about'):
        make_codec(flip_about='image')


def test_mask_value_of_exactly_one_half_is_valid():
    # Image columns >= 32 invalid; the warp shifts by half a pixel, so
    # heatmap column 8 (input x 32, image x 31.5) has a bilinear value of
    # exactly 0.5. The official uint8 warp rounds it to 128 / 255: valid.
    shift = np.array([[1, 0, 0.5], [0, 1, 0]], np.float64)
    m16 = make_codec().encode(
        *one_person(), invalid_segs=[square(32, 0, 64, 64)],
        ori_shape=(64, 64), warp_mat=shift)['heatmap_mask'][0]
    assert m16[:, :9].min() == 1 and m16[:, 9:].max() == 0
    valid = np.ones((64, 64), np.float32)
    valid[:, 32:] = 0
    float_warp = cv2.warpAffine(valid, shift * 0.25, (16, 16))
    assert (float_warp[:, 8] == 0.5).all()  # a > 0.5 threshold masks it


def test_crowd_rle_segmentation_is_masked():
    from xtcocotools import mask as coco_mask
    binary = np.zeros((64, 64), np.uint8, order='F')
    binary[40:, 40:] = 1
    rle = coco_mask.encode(binary)
    m32 = make_codec().encode(
        *one_person(), invalid_segs=[rle], ori_shape=(64, 64))[
            'heatmap_mask'][1]
    assert m32[21:, 21:].max() == 0 and m32[:19].min() == 1
