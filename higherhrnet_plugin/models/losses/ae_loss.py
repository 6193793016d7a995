"""Associative-embedding pull/push loss with the HigherHRNet normalisation."""
from typing import List, Tuple

import torch
from torch import Tensor, nn

from mmpose.registry import MODELS


@MODELS.register_module()
class PullPushTagLoss(nn.Module):
    """Associative-embedding grouping loss (Newell et al., 2017) as the
    official HigherHRNet code normalises it.

    Per image, for each person with at least one valid keypoint: reference
    tag r_n = mean tag of its keypoints, pull_n = mean over its keypoints and
    tag dims of (tag - r_n)^2; pull = mean over persons. Push over the N
    persons: ``'exp'``: (sum_ij exp(-||r_i - r_j||^2) - N) / (N (N - 1)) / 2;
    ``'max'``: the same with clamp(1 - ||r_i - r_j||, 0). N = 0 gives zero
    losses, N = 1 zero push. Both are averaged over the batch.

    Note:
        - batch size: B; keypoints: K; tag dimension: L; persons: N_b

    Args:
        push_type (str): ``'exp'`` or ``'max'``. Defaults to ``'exp'``.
        pull_weight (float): Defaults to 1e-3.
        push_weight (float): Defaults to 1e-3.
    """

    def __init__(self,
                 push_type: str = 'exp',
                 pull_weight: float = 1e-3,
                 push_weight: float = 1e-3):
        super().__init__()
        if push_type not in ('exp', 'max'):
            raise ValueError(f"push_type must be 'exp' or 'max', got "
                             f'{push_type!r}')
        self.push_type = push_type
        self.pull_weight = pull_weight
        self.push_weight = push_weight

    def _single_image(self, tags: Tensor,
                      keypoint_indices: Tensor) -> Tuple[Tensor, Tensor]:
        """Pull and push for one image.

        Args:
            tags (Tensor): tag maps (K*L, H, W), channel l*K + k.
            keypoint_indices (Tensor): (N, K, 2): flat index y*W + x and a
                valid flag per keypoint.
        """
        zero = tags.sum() * 0  # keeps the graph for DDP's unused-param check
        N, K = keypoint_indices.shape[:2]
        if N == 0:
            return zero, zero
        L = tags.shape[0] // K
        flat = tags.reshape(L, K, -1)
        index = keypoint_indices[..., 0].clamp(min=0, max=flat.shape[-1] - 1)
        # (N, K, L): the tag at each keypoint of each person
        joint_tags = flat[:, torch.arange(K, device=tags.device)[None, :],
                          index].permute(1, 2, 0)
        valid = keypoint_indices[..., 1] > 0
        counts = valid.sum(dim=1)
        keep = counts > 0
        if not keep.any():
            return zero, zero
        joint_tags, valid, counts = joint_tags[keep], valid[keep], counts[keep]
        weights = valid.to(tags.dtype)[..., None]
        reference = (joint_tags * weights).sum(1) / counts[:, None]  # (N, L)
        sq_err = ((joint_tags - reference[:, None])**2 * weights).sum((1, 2))
        pull = (sq_err / (counts * L)).mean()

        n = reference.shape[0]
        if n == 1:
            return pull, zero
        diff = reference[:, None] - reference[None]  # (N, N, L)
        if self.push_type == 'exp':
            similarity = torch.exp(-diff.pow(2).sum(-1))
        else:
            similarity = (1 - torch.linalg.vector_norm(diff, dim=-1)).clamp(0)
        # Off-diagonal pairs only: the official "sum - N" removes the
        # diagonal, whose similarity is exactly 1.
        off_diagonal = ~torch.eye(n, dtype=torch.bool, device=tags.device)
        push = similarity[off_diagonal].sum() / (n * (n - 1)) * 0.5
        return pull, push

    def forward(self, tags: Tensor,
                keypoint_indices: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """Compute the weighted pull and push losses of a batch.

        Args:
            tags (Tensor): tag maps (B, K*L, H, W).
            keypoint_indices (List[Tensor]): B tensors (N_b, K, 2).

        Returns:
            tuple: pull loss, push loss (scalars, batch means).
        """
        if len(keypoint_indices) != tags.shape[0]:
            raise ValueError(f'{len(keypoint_indices)} keypoint index sets '
                             f'for a batch of {tags.shape[0]} tag maps')
        pulls, pushes = zip(*(self._single_image(t, idx.to(t.device).long())
                              for t, idx in zip(tags, keypoint_indices)))
        pull = torch.stack(pulls).mean() * self.pull_weight
        push = torch.stack(pushes).mean() * self.push_weight
        return pull, push
