"""Test-time aggregation of HigherHRNet outputs: over output resolutions,
over the flipped view, and over input scales (reference behaviour in
docs/design.md, "Inference")."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# One view of one scale: per-resolution heatmaps (B, K, h_i, w_i) and tags
# (B, K*L, h_i, w_i) or None where that resolution has no tags.
ViewOutputs = Tuple[List[Tensor], List[Optional[Tensor]]]


def _resize(x: Tensor, size: Sequence[int], align_corners: bool) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(
        x, size=tuple(size), mode='bilinear', align_corners=align_corners)


def merge_resolutions(view: ViewOutputs,
                      align_corners: bool = False) -> Tuple[Tensor, Tensor]:
    """Bring all outputs of one view to the highest output resolution.

    Returns:
        tuple: heatmaps (B, K, H, W), the mean over resolutions; tags
        (B, K*L, H, W, T), the tag maps of the T outputs that have them.
    """
    heatmaps, tags = view
    size = heatmaps[-1].shape[-2:]
    mean_heatmap = torch.stack(
        [_resize(h, size, align_corners) for h in heatmaps]).mean(dim=0)
    tag_maps = [_resize(t, size, align_corners) for t in tags if t is not None]
    if not tag_maps:
        raise ValueError('no output predicts tags (with_ae is all False)')
    return mean_heatmap, torch.stack(tag_maps, dim=-1)


def unflip(heatmaps: Tensor, tags: Tensor,
           flip_indices: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """Undo a horizontal input flip: mirror the maps and swap left/right
    keypoint channels, for heatmaps (B, K, H, W) and tags (B, K*L, H, W, T).
    """
    B, K = heatmaps.shape[:2]
    heatmaps = heatmaps.flip(-1)[:, flip_indices]
    L = tags.shape[1] // K
    tags = tags.flip(-2).unflatten(1, (L, K))[:, :, flip_indices].flatten(1, 2)
    return heatmaps, tags


def aggregate_scale(views: List[ViewOutputs],
                    flip_indices: Optional[Sequence[int]],
                    align_corners: bool = False) -> Tuple[Tensor, Tensor]:
    """Aggregate one input scale: the original view and, optionally, the
    flipped one (second in ``views``).

    Heatmaps are the plain mean of the two views (the official code counts
    the original view twice; we do not). Tag maps of both views are kept side
    by side, giving a tag vector twice as long.

    Returns:
        tuple: heatmaps (B, K, H, W); tags (B, K*L, H, W, T * V) with V the
        number of views.
    """
    merged = [merge_resolutions(v, align_corners) for v in views]
    if len(merged) == 2:
        if flip_indices is None:
            raise ValueError('flip test needs `flip_indices` in the metainfo')
        merged[1] = unflip(*merged[1], flip_indices)
    heatmaps = torch.stack([m[0] for m in merged]).mean(dim=0)
    tags = torch.cat([m[1] for m in merged], dim=-1)
    return heatmaps, tags


def aggregate_test_outputs(per_scale: List[List[ViewOutputs]],
                           base_size: Sequence[int],
                           flip_indices: Optional[Sequence[int]] = None,
                           align_corners: bool = False
                           ) -> Tuple[Tensor, Tensor]:
    """Aggregate all test-time outputs into the maps the decoder groups.

    Args:
        per_scale: for each input scale (base scale first), the views
            ([original] or [original, flipped]) as :data:`ViewOutputs`.
        base_size: (H, W) of the base-scale network input; every map is
            projected to it.
        flip_indices: keypoint flip permutation (needed with flip views).
        align_corners: of the bilinear resizes.

    Returns:
        tuple: heatmaps (B, K, H, W), the mean over scales; tags
        (B, K, H, W, L'), from the base scale only, as tag vectors of length
        L' = L * T * V.
    """
    base_size = tuple(int(s) for s in base_size[:2])
    heatmaps, tags = [], None
    for scale_idx, views in enumerate(per_scale):
        hm, tag = aggregate_scale(views, flip_indices, align_corners)
        heatmaps.append(_resize(hm, base_size, align_corners))
        if scale_idx == 0:
            B, C, h, w, V = tag.shape
            tag = _resize(tag.permute(0, 1, 4, 2, 3).reshape(B, C * V, h, w),
                          base_size, align_corners)
            tags = tag.reshape(B, C, V, *base_size)
    K = heatmaps[0].shape[1]
    B, C, V = tags.shape[:3]
    # (B, L*K, V, H, W) -> (B, K, H, W, L*V): channel l*K + k is keypoint k.
    tags = tags.unflatten(1, (C // K, K)).permute(0, 2, 4, 5, 1, 3)
    return torch.stack(heatmaps).mean(dim=0), tags.flatten(-2)
