"""Test-time resize, flip / multi-scale aggregation and prediction."""
import numpy as np
import pytest
import torch

from higherhrnet_plugin.datasets.transforms.higherhrnet_resize import (
    HigherHRNetResize, multi_scale_input)
from higherhrnet_plugin.models.utils.test_time_aggregation import (
    aggregate_test_outputs)

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


def test_flip_aggregation_undoes_the_mirror_and_averages_once():
    torch.manual_seed(0)
    K, flip = 3, [0, 2, 1]
    hm = [torch.rand(1, K, 4, 6), torch.rand(1, K, 8, 12)]
    tag = [torch.rand(1, K, 4, 6), None]
    # what the network outputs for the mirrored image, plus a constant
    # disagreement that the mean must show exactly once
    flip_hm = [h.flip(-1)[:, flip] + 0.2 for h in hm]
    flip_tag = [tag[0].flip(-1)[:, flip], None]
    heatmaps, tags = aggregate_test_outputs(
        [[(hm, tag), (flip_hm, flip_tag)]], base_size=(16, 24),
        flip_indices=flip)
    single, single_tags = aggregate_test_outputs([[(hm, tag)]],
                                                 base_size=(16, 24))
    assert heatmaps.shape == (1, K, 16, 24)
    assert torch.allclose(heatmaps, single + 0.1, atol=1e-5)
    assert tags.shape == (1, K, 16, 24, 2)
    assert torch.allclose(tags[..., 0], single_tags[..., 0])
    assert torch.allclose(tags[..., 1], single_tags[..., 0], atol=1e-6)
    with pytest.raises(ValueError, match='flip_indices'):
        aggregate_test_outputs([[(hm, tag), (flip_hm, flip_tag)]],
                               base_size=(16, 24))


def test_multi_scale_averages_heatmaps_and_takes_tags_from_base_scale():
    K = 2
    base = ([torch.ones(1, K, 4, 4), torch.ones(1, K, 8, 8)],
            [torch.full((1, K, 4, 4), 5.0), None])
    large = ([torch.full((1, K, 8, 8), 3.0), torch.full((1, K, 16, 16), 3.0)],
             [torch.full((1, K, 8, 8), -7.0), None])
    heatmaps, tags = aggregate_test_outputs([[base], [large]],
                                            base_size=(16, 16))
    assert torch.allclose(heatmaps, torch.full_like(heatmaps, 2.0))
    assert torch.allclose(tags, torch.full_like(tags, 5.0))


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
