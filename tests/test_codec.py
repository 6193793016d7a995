"""Multi-resolution targets of MultiResolutionAssociativeEmbedding."""
import math

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


def test_no_people_and_max_people():
    codec = make_codec(max_num_people=2)
    empty = codec.encode(np.zeros((0, 3, 2)), np.zeros((0, 3)))
    assert empty['keypoint_indices'].shape == (0, 3, 2)
    assert all(h.max() == 0 for h in empty['heatmaps'])
    assert all(m.min() == 1 for m in empty['heatmap_mask'])
    many = codec.encode(
        np.full((5, 3, 2), 20, np.float32), np.ones((5, 3), np.float32))
    assert many['keypoint_indices'].shape == (2, 3, 2)


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


def test_mask_follows_horizontal_flip():
    codec = make_codec()
    keypoints, visible = one_person()
    flipped = codec.encode(
        keypoints, visible, invalid_segs=[square(0, 0, 32, 64)],
        ori_shape=(64, 64), flip=True, flip_direction='horizontal')
    m16 = flipped['heatmap_mask'][0]
    assert m16[:, 9:].max() == 0 and m16[:, :7].min() == 1
    with pytest.raises(ValueError, match='horizontal'):
        codec.encode(keypoints, visible, invalid_segs=[square(0, 0, 8, 8)],
                     ori_shape=(64, 64), flip=True, flip_direction='vertical')


def test_crowd_rle_segmentation_is_masked():
    from xtcocotools import mask as coco_mask
    binary = np.zeros((64, 64), np.uint8, order='F')
    binary[40:, 40:] = 1
    rle = coco_mask.encode(binary)
    m32 = make_codec().encode(
        *one_person(), invalid_segs=[rle], ori_shape=(64, 64))[
            'heatmap_mask'][1]
    assert m32[21:, 21:].max() == 0 and m32[:19].min() == 1
