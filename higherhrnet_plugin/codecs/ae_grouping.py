"""Associative-embedding grouping: heatmaps + tag maps -> people.

This is the decoder of Associative Embedding / HigherHRNet, written to give
the same people as the official HigherHRNet implementation (checked against
its outputs in ``tests/test_ae_grouping.py``) while keeping the heavy parts
vectorised:

1. NMS: a pixel survives if it equals the maximum of its ``k x k``
   neighbourhood (shifted maxima in NumPy, one map at a time, instead of
   PyTorch's ``max_pool2d``, which is slow on CPU for stride 1); top-k peaks
   per joint type with ``torch.topk`` on the same suppressed map as the
   official code, so tied peaks come out in the same order.
2. Greedy grouping, one joint type after another, with a Hungarian assignment
   between the new candidates and the existing groups (cost
   ``round(tag distance) * 100 - value``; among equal-cost optima the one
   ``munkres`` 1.1.x picks, see :mod:`.assignment`).
3. Quarter-pixel adjustment towards the higher neighbour, +0.5 pixel centre.
4. Person score = mean joint value (missing joints count as 0).
5. Refinement: a missing joint is taken at the argmax of
   ``heatmap - round(|tag - person tag|)``. Only missing (person, joint)
   pairs are searched, first among the strongest blocks of the heatmap, and
   on the whole map only when that cannot prove the maximum.

Shapes: K joint types, H x W maps, L tag dimensions (1, or 2 with flip test),
P people.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .assignment import ASSIGNMENT_SOLVERS, min_cost_assignment

ArrayLike = Union[np.ndarray, torch.Tensor]

#: COCO grouping order of the official implementation: head, shoulders,
#: hips, then the limbs outwards.
COCO_KEYPOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15,
                       16)

# Cost of an assignment to a padding column: "this candidate starts a group".
_PAD_COST = 1e10
# Refinement: blocks scored per joint type before the whole map is scored
# (more blocks settle more pairs but cost gathers; 32-128 measured best).
_LEADING_BLOCKS = 64


@dataclass
class AEGroupingConfig:
    """Settings of :func:`group_keypoints` (defaults: official HigherHRNet).

    Args:
        nms_kernel (int): Odd side of the NMS window. Defaults to 5.
        topk (int): Peaks kept per joint type. Defaults to 30.
        detection_threshold (float): Peaks with value <= this are dropped.
            Defaults to 0.1.
        tag_threshold (float): A candidate joins a group only if its tag
            distance to the group's mean tag is < this. Defaults to 1.0.
        max_people (int): Only the first ``max_people`` groups (in creation
            order) are offered to new candidates; later groups can still be
            created and are returned. Defaults to 30.
        keypoint_order (Sequence[int], optional): Order in which joint types
            are grouped. ``None`` means :data:`COCO_KEYPOINT_ORDER` for 17
            joints and ``range(K)`` otherwise.
        use_detection_value (bool): Use ``round(dist) * 100 - value`` as the
            assignment cost (else the raw tag distance). Defaults to True.
        adjust (bool): Quarter-pixel adjustment and +0.5 shift. Defaults to
            True.
        refine (bool): Fill missing joints from the maps. Defaults to True.
        assignment_solver (str): Which optimum the candidate-to-group
            assignment picks among equal-cost ones (see
            :mod:`.assignment`): ``'munkres-1.1'`` (default) that of
            ``munkres`` 1.1.x, the solver of the published official results;
            ``'munkres'`` the installed ``munkres`` package; ``'scipy'``
            SciPy's ``linear_sum_assignment``.
    """
    nms_kernel: int = 5
    topk: int = 30
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    max_people: int = 30
    keypoint_order: Optional[Sequence[int]] = None
    use_detection_value: bool = True
    adjust: bool = True
    refine: bool = True
    assignment_solver: str = 'munkres-1.1'

    def __post_init__(self):
        if self.assignment_solver not in ASSIGNMENT_SOLVERS:
            raise ValueError(
                f'assignment_solver (decode_assignment_solver in the codec) '
                f'must be one of {ASSIGNMENT_SOLVERS}, got '
                f'{self.assignment_solver!r}')

    def joint_order(self, num_keypoints: int) -> List[int]:
        """The grouping order for ``num_keypoints`` joint types."""
        if self.keypoint_order is not None:
            order = [int(k) for k in self.keypoint_order]
        elif num_keypoints == len(COCO_KEYPOINT_ORDER):
            order = list(COCO_KEYPOINT_ORDER)
        else:
            order = list(range(num_keypoints))
        if sorted(order) != list(range(num_keypoints)):
            raise ValueError(f'keypoint_order {order} is not a permutation '
                             f'of range({num_keypoints})')
        return order


def group_keypoints(heatmaps: ArrayLike,
                    tags: ArrayLike,
                    cfg: Optional[AEGroupingConfig] = None
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Group the peaks of one image's heatmaps into people by their tags.

    Args:
        heatmaps (np.ndarray | torch.Tensor): (K, H, W) joint heatmaps.
        tags (np.ndarray | torch.Tensor): (K, H, W, L) tag maps.
        cfg (AEGroupingConfig, optional): Settings; defaults if ``None``.

    Returns:
        tuple:
        - grouped (np.ndarray): (P, K, 3 + L) float32; per joint
          ``[x, y, value, tag_0 .. tag_{L-1}]``, all zeros for a joint that
          was not found. Joints filled by refinement keep zero tags (as in the
          official code).
        - scores (np.ndarray): (P, ) float32 person scores, the mean joint
          value before refinement.
    """
    cfg = AEGroupingConfig() if cfg is None else cfg
    hm_np, tag_np = _prepare_maps(heatmaps, tags)
    num_joints, height, width = hm_np.shape
    tag_dim = tag_np.shape[-1]

    blocks = _Blocks(cfg.nms_kernel, num_joints, height,
                     width) if cfg.refine else None
    peaks = _suppress(hm_np, cfg.nms_kernel, blocks)
    vals, flat_idx = _topk(peaks, cfg.topk)
    # (K, k, L): the tag vector under every peak
    peak_tags = tag_np.reshape(num_joints, height * width,
                               tag_dim)[np.arange(num_joints)[:, None],
                                        flat_idx]
    peak_xy = np.stack([flat_idx % width, flat_idx // width], axis=-1)

    grouped = _match_by_tag(vals, peak_xy, peak_tags,
                            cfg.joint_order(num_joints), cfg)
    if grouped.shape[0] == 0:
        return grouped, np.zeros((0, ), np.float32)

    if cfg.adjust:
        _adjust_in_place(grouped, hm_np)
    scores = grouped[:, :, 2].mean(axis=1)
    if cfg.refine:
        _refine_in_place(grouped, hm_np, tag_np, blocks)
    return grouped, scores


# --------------------------------------------------------------------------
# Inputs, NMS and top-k
# --------------------------------------------------------------------------


def _prepare_maps(heatmaps: ArrayLike,
                  tags: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """Validate the maps; return C-contiguous float32 arrays (K, H, W) and
    (K, H, W, L)."""
    heatmaps, tags = (x.detach().cpu().numpy()
                      if isinstance(x, torch.Tensor) else x
                      for x in (heatmaps, tags))
    heatmaps = np.ascontiguousarray(heatmaps, np.float32)
    tags = np.ascontiguousarray(tags, np.float32)
    if heatmaps.ndim != 3:
        raise ValueError(f'heatmaps must be (K, H, W), got {heatmaps.shape}')
    if tags.ndim != 4 or tags.shape[:3] != heatmaps.shape:
        raise ValueError(f'tags must be (K, H, W, L) matching heatmaps '
                         f'{heatmaps.shape}, got {tags.shape}')
    return heatmaps, tags


def _sliding_max(x: np.ndarray, size: int, stride: int,
                 out: Optional[np.ndarray] = None) -> np.ndarray:
    """``y[i] = max(x[i], x[i + stride], ..., x[i + (size - 1) * stride])``.

    Windows of 1, 2, 4, ... elements are built by doubling; the last step
    combines two overlapping power-of-two windows, so a window costs
    O(log size) passes. Working on the flat array makes every pass one
    contiguous 1-D operation (a window along W has ``stride`` 1, along H the
    row length), about three times faster than shifting 2-D views along W.

    Args:
        x (np.ndarray): (n, ) float32.
        size (int): Window length in elements.
        stride (int): Distance between the elements of a window.
        out (np.ndarray, optional): (n - (size - 1) * stride, ) output.

    Returns:
        np.ndarray: (n - (size - 1) * stride, ) window maxima.
    """
    shifts, width = [], 1
    while width * 2 <= size:
        shifts.append(width)
        width *= 2
    if width < size:
        shifts.append(size - width)  # <= width: the two windows overlap
    if not shifts:  # size 1
        if out is None:
            return x
        out[:] = x
        return out
    for step, shift in enumerate(shifts):
        length = x.size - shift * stride
        x = np.maximum(x[:length], x[shift * stride:],
                       out=out if step == len(shifts) - 1 else None)
    return x


def _local_max_map(heatmap: np.ndarray, kernel: int,
                   padded: Optional[np.ndarray] = None) -> np.ndarray:
    """Same values as ``max_pool2d(heatmap, kernel, 1, kernel // 2)``.

    Args:
        heatmap (np.ndarray): (H, W) float32.
        kernel (int): Odd window side.
        padded (np.ndarray, optional): (H + kernel - 1, W + kernel - 1)
            float32 scratch with a -inf border, reused between maps.

    Returns:
        np.ndarray: (H, W) neighbourhood maxima (a strided view).
    """
    if kernel % 2 != 1:
        raise ValueError(f'nms_kernel must be odd, got {kernel}')
    pad = kernel // 2
    height, width = heatmap.shape
    row_len = width + 2 * pad
    if padded is None:
        # max_pool2d pads with -inf: the border never wins the maximum
        padded = np.full((height + 2 * pad, row_len), -np.inf, np.float32)
    padded[pad:pad + height, pad:pad + width] = heatmap
    along_w = _sliding_max(padded.ravel(), kernel, 1)
    # flat index y * row_len + x holds the window at (y, x); the columns
    # past W mix neighbouring rows and are dropped
    result = np.empty(height * row_len, np.float32)
    _sliding_max(along_w, kernel, row_len, out=result[:result.size - 2 * pad])
    return result.reshape(height, row_len)[:, :width]


def _suppress(heatmaps: np.ndarray, kernel: int,
              blocks: Optional['_Blocks'] = None) -> np.ndarray:
    """NMS: keep the pixels equal to their neighbourhood maximum, zero others.

    Shifted maxima in NumPy, one map at a time so that the temporaries stay
    in cache: several times faster than PyTorch's stride-1 ``max_pool2d`` on
    CPU, and single-threaded, so nothing stalls when the cores are shared
    (PyTorch's threads then wait for each other at every operation).

    Args:
        heatmaps (np.ndarray): (K, H, W) float32.
        kernel (int): Odd window side.
        blocks (_Blocks, optional): Receives the block maxima, which the
            neighbourhood maxima give for free.

    Returns:
        np.ndarray: (K, H, W) float32, the official
        ``det * eq(max_pool2d(det, kernel, 1, kernel // 2), det).float()``
        bit for bit.
    """
    _, height, width = heatmaps.shape
    padded = np.full((height + kernel - 1, width + kernel - 1), -np.inf,
                     np.float32)
    peaks = np.empty_like(heatmaps)
    for joint_type, heatmap in enumerate(heatmaps):
        local_max = _local_max_map(heatmap, kernel, padded)
        if blocks is not None:
            blocks.record(joint_type, local_max)
        np.multiply(heatmap, local_max == heatmap, out=peaks[joint_type])
    return peaks


def _topk(peaks: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k values of each suppressed heatmap.

    ``torch.topk`` on exactly the official suppressed map, because tied peaks
    (heatmap plateaus) must come out in the same order: it decides which
    duplicate joins a group and which one seeds a new group.

    Args:
        peaks (np.ndarray): (K, H, W) suppressed heatmaps.
        k (int): Peaks per joint type.

    Returns:
        tuple: values (K, k) float32 (descending) and flat pixel indices
        (K, k) int64.
    """
    vals, idx = torch.from_numpy(peaks).view(peaks.shape[0], -1).topk(
        min(k, peaks[0].size), dim=1)
    return vals.numpy(), idx.numpy()


# --------------------------------------------------------------------------
# Grouping
# --------------------------------------------------------------------------


class _Groups:
    """People under construction, keyed like the official implementation.

    The official code keeps groups in a dict keyed by the first tag value of
    the joint that created them. Starting a group whose key already exists
    therefore reuses that group: the joint is written into it (replacing any
    joint of that type) and its tag list restarts from this joint. That is
    reproduced here because it changes results when tags repeat exactly
    (plateau duplicates carry identical tags).

    Args:
        num_joints (int): K.
        row_len (int): 3 + L.
        capacity (int): Upper bound on the number of groups.
    """

    def __init__(self, num_joints: int, row_len: int, capacity: int):
        self.joints = np.zeros((capacity, num_joints, row_len), np.float64)
        self.member_tags: List[List[np.ndarray]] = []
        self._mean_tags: List[Optional[np.ndarray]] = []
        self._by_key = {}

    def __len__(self) -> int:
        return len(self.member_tags)

    def start(self, joint_type: int, joint: np.ndarray,
              tag: np.ndarray) -> None:
        """Start a group from ``joint`` (or reset the one with its key)."""
        key = float(tag[0])
        group = self._by_key.get(key)
        if group is None:
            group = self._by_key[key] = len(self.member_tags)
            self.member_tags.append([])
            self._mean_tags.append(None)
        self.joints[group, joint_type] = joint
        self.member_tags[group] = [tag]
        self._mean_tags[group] = None

    def add(self, group: int, joint_type: int, joint: np.ndarray,
            tag: np.ndarray) -> None:
        """Put ``joint`` into an existing group."""
        self.joints[group, joint_type] = joint
        self.member_tags[group].append(tag)
        self._mean_tags[group] = None

    def mean_tags(self, count: int) -> np.ndarray:
        """(count, L) float32 mean tag of the first ``count`` groups.

        Means are cached per group and computed with ``np.mean`` over the
        stacked float32 members, exactly as the official code, because the
        rounding of the mean can decide ``round(distance)`` at .5.
        """
        for group in range(count):
            if self._mean_tags[group] is None:
                self._mean_tags[group] = np.mean(
                    self.member_tags[group], axis=0)
        return np.stack(self._mean_tags[:count])

    def result(self) -> np.ndarray:
        """(P, K, 3 + L) float32."""
        return self.joints[:len(self)].astype(np.float32)


def _match_by_tag(vals: np.ndarray, peak_xy: np.ndarray,
                  peak_tags: np.ndarray, order: Sequence[int],
                  cfg: AEGroupingConfig) -> np.ndarray:
    """Grow groups one joint type at a time.

    Args:
        vals (np.ndarray): (K, k) peak values.
        peak_xy (np.ndarray): (K, k, 2) integer peak positions.
        peak_tags (np.ndarray): (K, k, L) float32 tags under the peaks.
        order (Sequence[int]): Joint types in grouping order.
        cfg (AEGroupingConfig): Settings.

    Returns:
        np.ndarray: (P, K, 3 + L) float32 groups, in creation order.
    """
    num_joints, _, tag_dim = peak_tags.shape
    # compared in float64 like the official (float64) joint rows: a value of
    # exactly float32(0.1) is above the float64 threshold 0.1
    keep = vals.astype(np.float64) > cfg.detection_threshold
    groups = _Groups(num_joints, 3 + tag_dim, int(keep.sum()))
    for joint_type in order:
        sel = keep[joint_type]
        if not sel.any():
            continue
        tags32 = peak_tags[joint_type][sel]
        joints = np.concatenate([
            peak_xy[joint_type][sel], vals[joint_type][sel, None], tags32
        ], axis=1).astype(np.float64)  # (n, 3 + L): x, y, value, tag
        if len(groups) == 0:
            for joint, tag in zip(joints, tags32):
                groups.start(joint_type, joint, tag)
            continue
        num_offered = min(len(groups), cfg.max_people)
        dist, col_of_row = _assign_candidates(
            joints, groups.mean_tags(num_offered), cfg.use_detection_value,
            cfg.assignment_solver)
        for row, col in enumerate(col_of_row):
            if col < num_offered and dist[row, col] < cfg.tag_threshold:
                groups.add(col, joint_type, joints[row], tags32[row])
            else:
                groups.start(joint_type, joints[row], tags32[row])
    return groups.result()


def _assign_candidates(joints: np.ndarray, group_tags: np.ndarray,
                       use_value: bool,
                       solver: str) -> Tuple[np.ndarray, np.ndarray]:
    """Hungarian assignment of candidates (rows) to groups (columns).

    Args:
        joints (np.ndarray): (n, 3 + L) float64 candidate rows.
        group_tags (np.ndarray): (G, L) float32 group mean tags.
        use_value (bool): Cost ``round(dist) * 100 - value`` if True, else
            ``dist``.
        solver (str): See :func:`.assignment.min_cost_assignment`.

    Returns:
        tuple: tag distances (n, G) float64 and the column of every row (n, );
        columns >= G are padding, i.e. "start a new group".
    """
    num_cand, num_groups = joints.shape[0], group_tags.shape[0]
    diff = joints[:, None, 3:] - group_tags[None, :, :]
    dist = np.sqrt((diff * diff).sum(axis=2))
    cost = np.round(dist) * 100 - joints[:, 2:3] if use_value else dist
    if num_cand > num_groups:
        cost = np.concatenate(
            [cost, np.full((num_cand, num_cand - num_groups), _PAD_COST)],
            axis=1)
    return dist, min_cost_assignment(cost, solver)


# --------------------------------------------------------------------------
# Adjustment and refinement
# --------------------------------------------------------------------------


def _quarter_offsets(heatmaps: np.ndarray, joint_type: np.ndarray,
                     x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, ...]:
    """+-0.25 toward the higher horizontal / vertical neighbour.

    Ties go to -0.25; neighbours are clamped to the map.

    Args:
        heatmaps (np.ndarray): (K, H, W).
        joint_type, x, y (np.ndarray): (N, ) integer pixel of each point.

    Returns:
        tuple: dx (N, ), dy (N, ) float32 in {-0.25, 0.25}.
    """
    _, height, width = heatmaps.shape
    right = heatmaps[joint_type, y, np.minimum(x + 1, width - 1)]
    left = heatmaps[joint_type, y, np.maximum(x - 1, 0)]
    down = heatmaps[joint_type, np.minimum(y + 1, height - 1), x]
    up = heatmaps[joint_type, np.maximum(y - 1, 0), x]
    quarter = np.float32(0.25)
    return (np.where(right > left, quarter, -quarter),
            np.where(down > up, quarter, -quarter))


def _adjust_in_place(grouped: np.ndarray, heatmaps: np.ndarray) -> None:
    """Shift every found joint a quarter pixel up the heatmap, +0.5 centre.

    Args:
        grouped (np.ndarray): (P, K, 3 + L), integer positions; modified.
        heatmaps (np.ndarray): (K, H, W).
    """
    person, joint_type = np.nonzero(grouped[:, :, 2] > 0)
    x = grouped[person, joint_type, 0].astype(np.int64)
    y = grouped[person, joint_type, 1].astype(np.int64)
    dx, dy = _quarter_offsets(heatmaps, joint_type, x, y)
    grouped[person, joint_type, 0] = x + dx + 0.5
    grouped[person, joint_type, 1] = y + dy + 0.5


def _person_tags(grouped: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """(P, L) float32 mean tag of each person's found joints.

    Tags are read at the integer part of the (possibly adjusted) positions,
    i.e. at the original peak; joints are averaged in joint-index order with
    ``np.mean`` on float32, as the official code does (the order and
    precision matter for ``round()`` at .5).
    """
    found = grouped[:, :, 2] > 0
    x = grouped[:, :, 0].astype(np.int64)
    y = grouped[:, :, 1].astype(np.int64)
    out = np.empty((grouped.shape[0], tags.shape[-1]), np.float32)
    for person in range(grouped.shape[0]):
        joint_type = np.flatnonzero(found[person])
        out[person] = np.mean(
            tags[joint_type, y[person, joint_type], x[person, joint_type]],
            axis=0)
    return out


def _refine_in_place(grouped: np.ndarray, heatmaps: np.ndarray,
                     tags: np.ndarray, blocks: Optional['_Blocks']) -> None:
    """Fill missing joints at argmax(heatmap - round(tag distance)).

    Only the missing (person, joint type) pairs are searched (the official
    code scores every joint type of every person, then keeps the missing
    ones): first all together among the pixels of the strongest heatmap
    blocks, then on the whole map for the pairs that this cannot settle.
    The value at the best pixel must be > 0 to be used; the position gets the
    same +0.5 and quarter-pixel offset as :func:`_adjust_in_place`; the tag
    columns stay 0.

    Args:
        grouped (np.ndarray): (P, K, 3 + L); missing joints have value 0.
            Modified in place.
        heatmaps (np.ndarray): (K, H, W) float32.
        tags (np.ndarray): (K, H, W, L) float32.
        blocks (_Blocks, optional): Block maxima of ``heatmaps``; ``None``
            scores the whole maps for every pair.
    """
    missing_person, missing_type = np.nonzero(grouped[:, :, 2] == 0)
    if missing_person.size == 0:
        return
    pair_tag = _person_tags(grouped, tags)[missing_person]  # (N, L)
    num_joints, height, width = heatmaps.shape
    hm_flat = heatmaps.reshape(num_joints, -1)
    tag_flat = tags.reshape(num_joints, height * width, -1)

    if blocks is None:
        best = np.empty(missing_person.size, np.int64)
        unsettled = np.ones(missing_person.size, bool)
    else:
        best, unsettled = _refine_among_leading(hm_flat, tag_flat,
                                                missing_type, pair_tag,
                                                blocks, _LEADING_BLOCKS)
    for joint_type in np.unique(missing_type[unsettled]):
        pairs = np.flatnonzero(unsettled & (missing_type == joint_type))
        # (H*W, L) with contiguous columns: one plane per tag dimension
        planes = np.asfortranarray(tag_flat[joint_type])
        best[pairs] = _refine_scores(hm_flat[joint_type], planes,
                                     pair_tag[pairs]).argmax(axis=1)

    y, x = np.divmod(best, width)
    value = hm_flat[missing_type, best]
    fill = value > 0
    dx, dy = _quarter_offsets(heatmaps, missing_type, x, y)
    person, joint_type = missing_person[fill], missing_type[fill]
    grouped[person, joint_type, 0] = (x + dx + 0.5)[fill]
    grouped[person, joint_type, 1] = (y + dy + 0.5)[fill]
    grouped[person, joint_type, 2] = value[fill]


def _refine_among_leading(hm_flat: np.ndarray, tag_flat: np.ndarray,
                          pair_type: np.ndarray, pair_tag: np.ndarray,
                          blocks: '_Blocks',
                          count: int) -> Tuple[np.ndarray, np.ndarray]:
    """Refinement argmax over the first ``count`` blocks in search order.

    Blocks are searched by decreasing maximum, then in raster order. A
    pixel's score is never above its heatmap value, so a pair is settled if
    the next block in that order has a smaller maximum than the best score
    found, or an equal one but starts after the best pixel in raster order:
    no unscored pixel can then beat the best, and a tie would lose.

    Args:
        hm_flat (np.ndarray): (K, H*W) float32 heatmaps.
        tag_flat (np.ndarray): (K, H*W, L) float32 tags.
        pair_type (np.ndarray): (N, ) joint type of each missing pair.
        pair_tag (np.ndarray): (N, L) float32 tag of the pair's person.
        blocks (_Blocks): Block maxima.
        count (int): Blocks to score per joint type.

    Returns:
        tuple: (N, ) first raster-order argmax among the scored pixels, and
        (N, ) bool, True where that is not proven to be the argmax over the
        whole map.
    """
    types, type_row = np.unique(pair_type, return_inverse=True)
    pixels, next_max, next_first = blocks.leading(types, count)  # (T, n)
    # gather once per joint type, then copy rows per pair
    heat = hm_flat[types[:, None], pixels][type_row]
    tags = tag_flat[types[:, None], pixels][type_row]
    pixels = pixels[type_row]  # (N, n)
    score = _refine_scores(heat, tags, pair_tag)
    top = score.max(axis=1)
    # block pixels are not in raster order: lowest index among the maxima
    best = np.where(score == top[:, None], pixels,
                    hm_flat.shape[1]).min(axis=1)
    next_max, next_first = next_max[type_row], next_first[type_row]
    settled = (top > next_max) | ((top == next_max) & (best < next_first))
    return best, ~settled


def _refine_scores(heat: np.ndarray, tags: np.ndarray,
                   person_tag: np.ndarray) -> np.ndarray:
    """``heat - round(|tag - person_tag|)`` per person (row) and pixel.

    Same float32 operations and summation order as the official
    ``np.round(((tag - t) ** 2).sum(axis=2) ** 0.5)``: for L <= 2 the sum is
    a single addition, done plane by plane without a reduction; longer tags
    go through the same numpy reduction as the official code.

    Args:
        heat (np.ndarray): (n, ) heatmap values shared by all rows, or
            (N, n) per row; float32.
        tags (np.ndarray): (n, L) or (N, n, L) float32 tags.
        person_tag (np.ndarray): (N, L) float32.

    Returns:
        np.ndarray: (N, n) float32 scores.
    """
    tag_dim = tags.shape[-1]
    if tag_dim > 2:
        diff = np.ascontiguousarray(tags) - person_tag[:, None, :]
        sq_dist = (diff * diff).sum(axis=2)
    else:
        sq_dist = None
        for dim in range(tag_dim):
            term = tags[..., dim] - person_tag[:, dim, None]
            term *= term
            if sq_dist is None:
                sq_dist = term
            else:
                sq_dist += term
    np.sqrt(sq_dist, out=sq_dist)
    np.round(sq_dist, out=sq_dist)
    return np.subtract(heat, sq_dist, out=sq_dist)


class _Blocks:
    """The heatmaps cut into ``side x side`` blocks, with each block's max.

    The NMS computes, for every pixel, the maximum of the ``side x side``
    window centred on it; sampling that at the block centres (clamped to the
    map for partial border blocks, whose window still covers them) gives all
    block maxima for free.

    Args:
        side (int): Odd block side (the NMS kernel).
        num_joints (int): K.
        height (int): H.
        width (int): W.
    """

    def __init__(self, side: int, num_joints: int, height: int, width: int):
        rows, cols = -(-height // side), -(-width // side)
        self._centre_y = np.minimum(
            np.arange(rows) * side + side // 2, height - 1)[:, None]
        self._centre_x = np.minimum(
            np.arange(cols) * side + side // 2, width - 1)[None, :]
        self.side, self.cols = side, cols
        self.height, self.width = height, width
        self.max = np.empty((num_joints, rows * cols), np.float32)

    def record(self, joint_type: int, local_max: np.ndarray) -> None:
        """Keep the block maxima of one (H, W) neighbourhood-maximum map."""
        self.max[joint_type] = local_max[self._centre_y,
                                         self._centre_x].ravel()

    def leading(self, joint_types: np.ndarray, count: int
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The first ``count`` blocks in search order, per joint type.

        Search order: decreasing block maximum, then raster order.

        Args:
            joint_types (np.ndarray): (T, ) heatmaps to look at.
            count (int): Number of blocks.

        Returns:
            tuple: (T, n) flat pixel indices of those blocks (pixels past the
            map edge replaced by a pixel of the same block); (T, ) maximum
            of the next block in search order (-inf if none) and (T, ) the
            flat index of its first pixel.
        """
        block_max = self.max[joint_types]  # (T, B)
        num_types, num_blocks = block_max.shape
        if count >= num_blocks:
            every = np.broadcast_to(np.arange(num_blocks), block_max.shape)
            return (self._pixels(every),
                    np.full(num_types, -np.inf, np.float32),
                    np.zeros(num_types, np.int64))
        # the count-th largest maximum: blocks above it are all taken, blocks
        # equal to it fill the remaining places in raster order
        cut = -np.partition(-block_max, count - 1, axis=1)[:, count - 1:count]
        above, at = block_max > cut, block_max == cut
        places = count - above.sum(axis=1, keepdims=True)
        rank = np.cumsum(at, axis=1)
        taken = above | (at & (rank <= places))
        chosen = np.nonzero(taken)[1].reshape(num_types, count)
        # the next block: an equal one left over, else the largest below
        left_over = at & (rank > places)
        below = np.where(block_max < cut, block_max, -np.inf)
        below_max = below.max(axis=1)
        has_left_over = left_over.any(axis=1)
        next_max = np.where(has_left_over, cut[:, 0], below_max)
        next_block = np.where(has_left_over, left_over.argmax(axis=1),
                              (below == below_max[:, None]).argmax(axis=1))
        return self._pixels(chosen), next_max, self._first_pixel(next_block)

    def _first_pixel(self, block: np.ndarray) -> np.ndarray:
        """Flat index of each block's top-left pixel, its smallest index."""
        return (block // self.cols * self.side * self.width +
                block % self.cols * self.side)

    def _pixels(self, blocks: np.ndarray) -> np.ndarray:
        """(T, n) flat indices of all pixels of the (T, b) ``blocks``."""
        offset = np.arange(self.side)
        top = (blocks // self.cols * self.side)[..., None, None]
        left = (blocks % self.cols * self.side)[..., None, None]
        y = np.minimum(top + offset[:, None], self.height - 1)
        x = np.minimum(left + offset[None, :], self.width - 1)
        return (y * self.width + x).reshape(blocks.shape[0], -1)
