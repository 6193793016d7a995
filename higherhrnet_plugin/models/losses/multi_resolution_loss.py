"""The HigherHRNet training loss over all output resolutions."""
from typing import Dict, List, Optional, Sequence

from torch import Tensor, nn

from mmpose.registry import MODELS


@MODELS.register_module()
class HigherHRNetLoss(nn.Module):
    """Masked heatmap MSE at every output resolution plus the AE loss on the
    resolutions that predict tags.

    The heatmap loss of resolution i is mean over (K, H, W) of
    (pred - gt)^2 * mask, averaged over the batch, times
    ``heatmap_weights[i]``. MMPose's ``KeypointMSELoss`` with a (B, 1, H, W)
    mask computes exactly this, so it is reused.

    Note:
        - batch size: B; keypoints: K; tag dim: L; resolution i: (h_i, w_i)

    Args:
        heatmap_loss (dict): Config of the per-resolution heatmap loss.
            Defaults to ``KeypointMSELoss``.
        tag_loss (dict): Config of the AE loss. Defaults to
            ``PullPushTagLoss`` (exp push, weights 1e-3).
        heatmap_weights (Sequence[float]): One weight per output resolution.
            Defaults to (1.0, 1.0).
    """

    def __init__(self,
                 heatmap_loss: dict = dict(type='KeypointMSELoss'),
                 tag_loss: dict = dict(type='PullPushTagLoss'),
                 heatmap_weights: Sequence[float] = (1.0, 1.0)):
        super().__init__()
        self.heatmap_loss = MODELS.build(heatmap_loss)
        self.tag_loss = MODELS.build(tag_loss)
        self.heatmap_weights = list(heatmap_weights)

    def forward(self, heatmaps: List[Tensor], tags: List[Optional[Tensor]],
                gt_heatmaps: List[Tensor], gt_masks: List[Tensor],
                keypoint_indices: List[Tensor]) -> Dict[str, Tensor]:
        """Compute the losses.

        Args:
            heatmaps (List[Tensor]): per resolution, (B, K, h_i, w_i).
            tags (List[Tensor | None]): per resolution, (B, K*L, h_i, w_i) or
                None where the resolution has no tags.
            gt_heatmaps (List[Tensor]): per resolution, (B, K, h_i, w_i).
            gt_masks (List[Tensor]): per resolution, (B, h_i, w_i).
            keypoint_indices (List[Tensor]): B tensors (N_b, K, 2), flat
                indices at the resolution of the tags.

        Returns:
            dict: ``loss_heatmap_<i>`` per resolution and ``loss_pull_<i>``,
            ``loss_push_<i>`` per tag resolution.
        """
        if not len(heatmaps) == len(gt_heatmaps) == len(
                self.heatmap_weights):
            raise ValueError(
                f'{len(heatmaps)} outputs, {len(gt_heatmaps)} targets and '
                f'{len(self.heatmap_weights)} heatmap_weights must agree')
        losses = dict()
        for i, (pred, gt, mask) in enumerate(
                zip(heatmaps, gt_heatmaps, gt_masks)):
            if pred.shape != gt.shape:
                raise ValueError(f'resolution {i}: output {tuple(pred.shape)}'
                                 f' but target {tuple(gt.shape)}')
            losses[f'loss_heatmap_{i}'] = self.heatmap_loss(
                pred, gt, mask=mask[:, None].to(pred.dtype)) * \
                self.heatmap_weights[i]
        for i, tag in enumerate(tags):
            if tag is not None:
                pull, push = self.tag_loss(tag, keypoint_indices)
                losses[f'loss_pull_{i}'] = pull
                losses[f'loss_push_{i}'] = push
        return losses
