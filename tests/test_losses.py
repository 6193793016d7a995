"""The HigherHRNet loss against hand-computed values."""
import math

import pytest
import torch

from higherhrnet_plugin.models.losses import HigherHRNetLoss, PullPushTagLoss


def tag_maps(K=2, H=4, W=4, L=1):
    return torch.zeros(1, K * L, H, W)


def indices(*persons):
    """persons: lists of (k, x, y, valid) on a W=4 map -> (N, K=2, 2)."""
    out = torch.zeros(len(persons), 2, 2, dtype=torch.long)
    for n, joints in enumerate(persons):
        for k, x, y, valid in joints:
            out[n, k] = torch.tensor([y * 4 + x, valid])
    return out


def test_one_person_pull_is_spread_around_mean_and_push_zero():
    tags = tag_maps()
    tags[0, 0, 1, 2] = 0.3   # keypoint 0 at (x=2, y=1)
    tags[0, 1, 3, 0] = -0.5  # keypoint 1 at (x=0, y=3)
    loss = PullPushTagLoss(pull_weight=1.0, push_weight=1.0)
    pull, push = loss(tags, [indices([(0, 2, 1, 1), (1, 0, 3, 1)])])
    # mean tag -0.1; squared deviations 0.16 and 0.16
    assert pull.item() == pytest.approx(0.16)
    assert push.item() == 0


def test_two_people_push_exp_and_max():
    tags = tag_maps()
    tags[0, 0, 0, 0] = 1.0
    tags[0, 0, 0, 1] = 1.6
    idx = indices([(0, 0, 0, 1)], [(0, 1, 0, 1)])  # one keypoint each
    pull, push = PullPushTagLoss(pull_weight=1, push_weight=1)(tags, [idx])
    assert pull.item() == pytest.approx(0.0)
    # (2 * exp(-0.36)) / (2 * 1) * 0.5
    assert push.item() == pytest.approx(0.5 * math.exp(-0.36), rel=1e-6)
    _, push_max = PullPushTagLoss(
        push_type='max', pull_weight=1, push_weight=1)(tags, [idx])
    assert push_max.item() == pytest.approx(0.5 * 0.4, rel=1e-6)


def test_default_weights_are_one_thousandth():
    tags = tag_maps()
    tags[0, 0, 0, 0] = 1.0
    idx = indices([(0, 0, 0, 1), (1, 1, 0, 1)])
    pull, _ = PullPushTagLoss()(tags, [idx])
    # tags 1.0 and 0.0 -> mean 0.5, pull 0.25
    assert pull.item() == pytest.approx(0.25e-3)


def test_empty_image_and_invisible_people_contribute_nothing():
    tags = torch.randn(2, 2, 4, 4, requires_grad=True)
    person = indices([(0, 1, 1, 1), (1, 2, 2, 1)])
    invisible = indices([(0, 3, 3, 0), (1, 0, 0, 0)])
    loss = PullPushTagLoss(pull_weight=1, push_weight=1)
    empty = torch.zeros(0, 2, 2, dtype=torch.long)
    pull_a, push_a = loss(tags, [person, empty])
    pull_b, push_b = loss(tags, [torch.cat([person, invisible]), empty])
    assert pull_a.item() == pytest.approx(pull_b.item())
    assert push_a.item() == pytest.approx(push_b.item()) == 0
    # the batch mean halves the single image's pull
    single, _ = loss(tags[:1], [person])
    assert pull_a.item() == pytest.approx(single.item() / 2)
    (pull_a + push_a).backward()
    assert torch.isfinite(tags.grad).all()


def test_all_empty_batch_gives_zero_with_gradient():
    tags = torch.randn(1, 2, 4, 4, requires_grad=True)
    pull, push = PullPushTagLoss()(tags, [torch.zeros(0, 2, 2).long()])
    assert pull.item() == push.item() == 0
    (pull + push).backward()
    assert tags.grad is not None


def test_max_push_gradient_finite_for_identical_tags():
    tags = torch.zeros(1, 2, 4, 4, requires_grad=True)
    idx = indices([(0, 0, 0, 1)], [(0, 1, 0, 1)])
    _, push = PullPushTagLoss(push_type='max')(tags, [idx])
    push.backward()
    assert torch.isfinite(tags.grad).all()


def test_tag_dim_two_uses_squared_l2_distance():
    K, L = 1, 2
    tags = torch.zeros(1, K * L, 1, 2)
    tags[0, :, 0, 1] = torch.tensor([0.3, 0.4])  # person 2's tag, |d| = 0.5
    idx = torch.tensor([[[0, 1]], [[1, 1]]])
    _, push = PullPushTagLoss(pull_weight=1, push_weight=1)(tags, [idx])
    assert push.item() == pytest.approx(0.5 * math.exp(-0.25), rel=1e-6)


def test_heatmap_loss_is_masked_mean_per_resolution_with_weights():
    loss = HigherHRNetLoss(heatmap_weights=(1.0, 0.5))
    pred = [torch.ones(2, 1, 2, 2), torch.full((2, 1, 4, 4), 2.0)]
    gt = [torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 4, 4)]
    masks = [torch.ones(2, 2, 2), torch.ones(2, 4, 4)]
    masks[0][0, 0, :] = 0  # 2 of 4 pixels masked in image 0
    masks[1][1] = 0        # image 1 fully masked at resolution 1
    tags = [torch.zeros(2, 1, 2, 2), None]
    empty = [torch.zeros(0, 1, 2).long()] * 2
    losses = loss(pred, tags, gt, masks, empty)
    # res 0: image 0 -> 0.5, image 1 -> 1.0 ; mean 0.75
    assert losses['loss_heatmap_0'].item() == pytest.approx(0.75)
    # res 1: image 0 -> 4, image 1 -> 0 ; mean 2, weight 0.5
    assert losses['loss_heatmap_1'].item() == pytest.approx(1.0)
    assert set(losses) == {
        'loss_heatmap_0', 'loss_heatmap_1', 'loss_pull_0', 'loss_push_0'
    }


def test_mismatched_shapes_are_reported():
    loss = HigherHRNetLoss()
    with pytest.raises(ValueError, match='resolution 1'):
        loss([torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 4, 4)], [None, None],
             [torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 8, 8)],
             [torch.ones(1, 2, 2), torch.ones(1, 8, 8)], [])
