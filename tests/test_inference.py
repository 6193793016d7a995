"""Test-time resize, flip / multi-scale aggregation and prediction."""
import numpy as np
import pytest
import torch

from higherhrnet_plugin.datasets.transforms.higherhrnet_resize import (
    HigherHRNetResize, multi_scale_input)
from higherhrnet_plugin.models.postprocess import (OutputLayout,
                                                  aggregate_views, mean_of)

from .conftest import TINY_CONFIG, build_model


def test_multi_scale_sizes_are_aligned_at_the_smallest_scale():
    # official sizes for a 640x425 image, input 512, scales [2, 1, 0.5]
    sizes = {
        s: multi_scale_input((640, 425), 512, s, 0.5, 64)[0]
        for s in (2, 1, 0.5)
    }
    assert sizes == {2: (1792, 1024), 1: (896, 512), 0.5: (448, 256)}
    size, center, box = multi_scale_input((640, 425), 512, 1, 1, 64)
    assert size == (832, 512)
    assert center.tolist() == [320, 213]  # rounded like the official code
    assert box.tolist() == pytest.approx([832 / 512 * 425, 425])
    # portrait images keep the short side (width) at the input size
    size, _, box = multi_scale_input((300, 500), 512, 1, 1, 64)
    assert size == (512, 896) and box[0] == 300


def test_resize_produces_one_input_per_scale_and_base_metainfo():
    img = np.zeros((425, 640, 3), np.uint8)
    img[200:230, 300:340] = 255
    results = HigherHRNetResize((512, 512), aug_scales=[2, 0.5])(
        dict(img=img, ori_shape=(425, 640)))
    assert [i.shape[:2] for i in results['img']] == [(512, 896), (1024, 1792),
                                                      (256, 448)]
    assert results['img_shape'] == (512, 896)
    assert results['input_size'] == (896, 512)
    assert results['aug_scales'] == [2, 0.5]
    # the bright patch lands where the inverse map says it should
    base = results['img'][0]
    ys, xs = np.nonzero(base[..., 0] > 128)
    scale = results['input_scale'] / np.array(results['input_size'])
    centre_img = np.array([xs.mean(), ys.mean()]) * scale + \
        results['input_center'] - results['input_scale'] / 2
    assert centre_img == pytest.approx([319.5, 214.5], abs=1.5)


def _outputs(heatmaps, tags):
    """Head outputs of one view: heatmaps, then the tags where present."""
    return [h if t is None else torch.cat([h, t], dim=1)
            for h, t in zip(heatmaps, tags)]


def test_flip_aggregation_undoes_the_mirror_and_averages_once():
    torch.manual_seed(0)
    K, flip = 3, [0, 2, 1]
    layout = OutputLayout(num_keypoints=K)
    hm = [torch.rand(1, K, 4, 6), torch.rand(1, K, 8, 12)]
    tag = [torch.rand(1, K, 4, 6), None]
    # what the network outputs for the mirrored image, plus a constant
    # disagreement that the mean must show exactly once
    flip_hm = [h.flip(-1)[:, flip] + 0.2 for h in hm]
    flip_tag = [tag[0].flip(-1)[:, flip], None]
    views = [[_outputs(hm, tag), _outputs(flip_hm, flip_tag)]]
    heatmaps, tags = aggregate_views(views, layout, (16, 24), flip)
    single, single_tags = aggregate_views([[_outputs(hm, tag)]], layout,
                                          (16, 24))
    assert heatmaps.shape == (1, K, 16, 24)
    assert torch.allclose(heatmaps, single + 0.1, atol=1e-5)
    # tag vector (original view, flipped view): (B, L'*K, H, W), L' = 2
    assert tags.shape == (1, 2 * K, 16, 24)
    assert torch.allclose(tags[:, :K], single_tags)
    assert torch.allclose(tags[:, K:], single_tags, atol=1e-6)
    with pytest.raises(ValueError, match='flip_indices'):
        aggregate_views(views, layout, (16, 24))


@pytest.mark.parametrize('count', [1, 2, 3])
def test_mean_of_is_the_stacked_mean_bit_for_bit(count):
    """The aggregation averages outputs, views and scales without stacking
    them where it can; the values stay those of ``stack().mean(0)``, also
    for huge, tiny and infinite values."""
    generator = torch.Generator().manual_seed(count)
    tensors = []
    for _ in range(count):
        x = torch.randn(4, 64, 64, generator=generator)
        x = x * 10.0**torch.randint(-40, 38, x.shape, generator=generator)
        x[0, 0, :3] = torch.tensor([float('inf'), -float('inf'), 3e38])
        tensors.append(x)
    expected = torch.stack(tensors).mean(dim=0)
    got = mean_of(tensors)
    assert torch.equal(got, expected)
    nonzero = expected != 0  # bits too (a zero may differ in sign)
    assert torch.equal(got.view(torch.int32)[nonzero],
                       expected.view(torch.int32)[nonzero])


def test_multi_scale_averages_heatmaps_and_takes_tags_from_base_scale():
    K = 2
    layout = OutputLayout(num_keypoints=K)
    base = _outputs([torch.ones(1, K, 4, 4), torch.ones(1, K, 8, 8)],
                    [torch.full((1, K, 4, 4), 5.0), None])
    large = _outputs(
        [torch.full((1, K, 8, 8), 3.0), torch.full((1, K, 16, 16), 3.0)],
        [torch.full((1, K, 8, 8), -7.0), None])
    heatmaps, tags = aggregate_views([[base], [large]], layout, (16, 16))
    assert torch.allclose(heatmaps, torch.full_like(heatmaps, 2.0))
    assert tags.shape == (1, K, 16, 16)
    assert torch.allclose(tags, torch.full_like(tags, 5.0))


def test_shared_tag_map_is_repeated_for_every_keypoint():
    layout = OutputLayout(num_keypoints=3, tag_dim=2, tag_per_keypoint=False)
    out = torch.rand(1, 3 + 2, 4, 4)
    heatmaps, tags = layout.split([out, torch.rand(1, 3, 8, 8)])
    assert tags[1] is None and tags[0].shape == (1, 2 * 3, 4, 4)
    # channel l * K + k holds tag dimension l
    for k in range(3):
        assert torch.equal(tags[0][:, k], out[:, 3])
        assert torch.equal(tags[0][:, 3 + k], out[:, 4])


@pytest.mark.parametrize('flip_test', [False, True])
def test_predict_returns_people_in_image_pixels(flip_test):
    from mmengine.structures import InstanceData
    from mmpose.structures import PoseDataSample
    model = build_model(TINY_CONFIG)
    model.eval()
    model.test_cfg['flip_test'] = flip_test
    sample = PoseDataSample(metainfo=dict(
        img_shape=(256, 384), input_size=(384, 256),
        input_center=np.array([320., 213.]),
        input_scale=np.array([637.5, 425.]),
        flip_indices=list(range(17))))
    sample.gt_instances = InstanceData()
    with torch.no_grad():
        result = model(torch.rand(1, 3, 256, 384), [sample], mode='predict')
    pred = result[0].pred_instances
    K = 17
    assert pred.keypoints.ndim == 3 and pred.keypoints.shape[1:] == (K, 2)
    assert pred.keypoint_scores.shape == pred.keypoints.shape[:2]
    assert len(pred.bbox_scores) == len(pred.keypoints)


@pytest.mark.parametrize('image_size', [(640, 425), (300, 500), (20, 12)])
def test_heatmaps_in_image_pixels_line_up_with_keypoints(image_size):
    """A heatmap peak and the keypoint decoded from it land on the same
    image pixel once the image-space heatmaps are resized onto a drawing of
    the image (full size or halved), as MMPose's visualiser does."""
    import cv2
    import torch.nn.functional as F

    from higherhrnet_plugin.models.postprocess import (heatmaps_to_image,
                                                      input_to_image)
    img_w, img_h = image_size
    (in_w, in_h), center, scale = multi_scale_input(image_size, 256, 1, 1,
                                                    64)
    meta = dict(input_size=(in_w, in_h), input_center=center,
                input_scale=scale, ori_shape=(img_h, img_w))
    u, v = int(in_w * 0.45), int(in_h * 0.3)  # a peak, in input pixels
    heatmaps = np.zeros((3, in_h, in_w), np.float32)
    heatmaps[1, v, u] = 1.0
    heatmaps[1] = cv2.GaussianBlur(heatmaps[1], (0, 0), 2)
    image_maps = heatmaps_to_image(torch.from_numpy(heatmaps), meta)
    assert image_maps.shape[0] == 3
    # at most the image's resolution, and the image's aspect ratio
    h, w = image_maps.shape[1:]
    assert h <= img_h and w <= img_w
    assert abs(h / img_h - w / img_w) <= 1 / min(h, w)
    # the decoder reads a peak at pixel u as input coordinate u + 0.5
    keypoint = input_to_image(np.array([u, v]) + 0.5, meta)
    for factor in (1.0, 0.5):
        shape = (round(img_h * factor), round(img_w * factor))
        drawn = F.interpolate(image_maps[None, 1:2], shape, mode='bilinear',
                              align_corners=False)[0, 0].numpy()
        y, x = np.unravel_index(drawn.argmax(), shape)
        tolerance = max(1.0, factor * img_w / in_w)  # one input pixel
        assert np.abs(np.array([x, y]) - keypoint * factor).max() <= \
            tolerance, (factor, (x, y), keypoint * factor)


@pytest.mark.parametrize('factor', [(1.0, 1.0), (0.5, 0.25)])
def test_image_to_heatmap_matrix_inverts_the_keypoint_mapping(factor):
    """Exact to float rounding: the image point a heatmap pixel's keypoint
    maps to (with the decoder's +0.5) maps back to that pixel, also for a
    resized drawing (pixel j covers coordinate (j + 0.5) / f - 0.5)."""
    from higherhrnet_plugin.models.postprocess import (
        image_to_heatmap_matrix, input_to_image)
    meta = dict(input_size=(448, 256), input_center=np.array([320., 213.]),
                input_scale=np.array([741.4, 425.]))
    pixels = np.array([[0, 0], [300, 100], [447, 255]], np.float64)
    keypoints = input_to_image(pixels + 0.5, meta)
    drawn = (keypoints + 0.5) * np.array(factor) - 0.5
    matrix = image_to_heatmap_matrix(meta, factor)
    back = drawn @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(back, pixels, atol=1e-9)
