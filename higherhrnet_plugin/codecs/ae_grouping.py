"""Associative-embedding grouping: heatmaps + tag maps -> people.

This is the decoder of Associative Embedding / HigherHRNet, written to give
the same people as the official HigherHRNet implementation (checked against
its outputs in ``tests/test_ae_grouping.py``) while keeping the heavy parts
vectorised:

1. NMS: a pixel survives if it equals the maximum of its ``k x k``
   neighbourhood (computed with shifted maxima instead of ``max_pool2d``, which
   is slow on CPU for stride 1); top-k peaks per joint type with
   ``torch.topk`` on the same suppressed map as the official code, so tied
   peaks come out in the same order.
2. Greedy grouping, one joint type after another, with a Hungarian assignment
   between the new candidates and the existing groups (cost
   ``round(tag distance) * 100 - value``).
3. Quarter-pixel adjustment towards the higher neighbour, +0.5 pixel centre.
4. Person score = mean joint value (missing joints count as 0).
5. Refinement: a missing joint is taken at the argmax of
   ``heatmap - round(|tag - person tag|)``. Only missing (person, joint)
   pairs are searched, first among the strong pixels of the heatmap and on the
   whole map only when that cannot prove the maximum.

Shapes: K joint types, H x W maps, L tag dimensions (1, or 2 with flip test),
P people.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]

#: COCO grouping order of the official implementation: head, shoulders,
#: hips, then the limbs outwards.
COCO_KEYPOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15,
                       16)

# Cost of an assignment to a padding column: "this candidate starts a group".
_PAD_COST = 1e10
# Refinement: heatmap blocks scored before falling back to the whole map.
_STRONG_BLOCKS = 64


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
    hm_t, tag_np = _prepare_maps(heatmaps, tags)
    hm_np = hm_t.numpy()
    num_joints, height, width = hm_np.shape
    tag_dim = tag_np.shape[-1]

    local_max = _local_max_map(hm_t, cfg.nms_kernel)
    # block maxima for the refinement search, read before NMS reuses the map
    blocks = _Blocks(local_max, cfg.nms_kernel) if cfg.refine else None
    vals, flat_idx = _topk_peaks(hm_t, local_max, cfg.topk)
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
                  tags: ArrayLike) -> Tuple[torch.Tensor, np.ndarray]:
    """Validate the maps; return heatmaps as a CPU float32 tensor (K, H, W)
    sharing memory with its ``.numpy()`` view, and tags as a C-contiguous
    float32 array (K, H, W, L)."""
    if isinstance(heatmaps, torch.Tensor):
        hm_t = heatmaps.detach().to('cpu', torch.float32).contiguous()
    else:
        hm_t = torch.from_numpy(np.ascontiguousarray(heatmaps, np.float32))
    if isinstance(tags, torch.Tensor):
        tags = tags.detach().cpu().numpy()
    tag_np = np.ascontiguousarray(tags, np.float32)
    if hm_t.ndim != 3:
        raise ValueError(f'heatmaps must be (K, H, W), got {tuple(hm_t.shape)}')
    if tag_np.ndim != 4 or tag_np.shape[:3] != tuple(hm_t.shape):
        raise ValueError(f'tags must be (K, H, W, L) matching heatmaps '
                         f'{tuple(hm_t.shape)}, got {tag_np.shape}')
    return hm_t, tag_np


def _sliding_max(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Maximum over windows of ``size`` along ``dim`` (no padding).

    Windows of 1, 2, 4, ... are built by doubling; the last step combines two
    overlapping power-of-two windows, so ``size`` costs O(log size) passes.

    Args:
        x (torch.Tensor): Input, length n along ``dim``.
        size (int): Window length, 1 <= size <= n.
        dim (int): Dimension to slide along.

    Returns:
        torch.Tensor: Length ``n - size + 1`` along ``dim``.
    """
    length, width = x.shape[dim], 1
    out = x
    while width * 2 <= size:
        out = torch.maximum(
            out.narrow(dim, 0, length - width * 2 + 1),
            out.narrow(dim, width, length - width * 2 + 1))
        width *= 2
    if width < size:
        rest = size - width  # <= width, so the two windows cover `size`
        out = torch.maximum(
            out.narrow(dim, 0, length - size + 1),
            out.narrow(dim, rest, length - size + 1))
    return out


def _local_max_map(heatmaps: torch.Tensor, kernel: int) -> torch.Tensor:
    """Same values as ``max_pool2d(heatmaps, kernel, 1, kernel // 2)``.

    Args:
        heatmaps (torch.Tensor): (K, H, W).
        kernel (int): Odd window side.

    Returns:
        torch.Tensor: (K, H, W) neighbourhood maxima.
    """
    if kernel % 2 != 1:
        raise ValueError(f'nms_kernel must be odd, got {kernel}')
    pad = kernel // 2
    # max_pool2d pads with -inf, i.e. the border never wins the maximum
    padded = torch.nn.functional.pad(
        heatmaps, (pad, pad, pad, pad), value=float('-inf'))
    return _sliding_max(_sliding_max(padded, kernel, 2), kernel, 1)


def _topk_peaks(heatmaps: torch.Tensor, local_max: torch.Tensor,
                k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k values of each NMS-suppressed heatmap.

    Args:
        heatmaps (torch.Tensor): (K, H, W).
        local_max (torch.Tensor): (K, H, W) from :func:`_local_max_map`;
            overwritten (it becomes the suppressed map).
        k (int): Peaks per joint type.

    Returns:
        tuple: values (K, k) float32 (descending) and flat pixel indices
        (K, k) int64.
    """
    num_joints = heatmaps.shape[0]
    # in place, no new 4-byte-per-pixel buffers: 1.0 where the pixel is its
    # neighbourhood maximum, times the heatmap -- the official
    # `det * eq(maxm, det).float()`, bit for bit
    peaks = local_max.eq_(heatmaps).mul_(heatmaps)
    # torch.topk on exactly the official suppressed map: tied peaks (heatmap
    # plateaus) must come out in the same order, as that order decides
    # which duplicate joins a group and which one seeds a new group.
    vals, idx = peaks.view(num_joints, -1).topk(
        min(k, peaks[0].numel()), dim=1)
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
            joints, groups.mean_tags(num_offered), cfg.use_detection_value)
        for row, col in enumerate(col_of_row):
            if col < num_offered and dist[row, col] < cfg.tag_threshold:
                groups.add(col, joint_type, joints[row], tags32[row])
            else:
                groups.start(joint_type, joints[row], tags32[row])
    return groups.result()


def _assign_candidates(joints: np.ndarray, group_tags: np.ndarray,
                       use_value: bool) -> Tuple[np.ndarray, np.ndarray]:
    """Hungarian assignment of candidates (rows) to groups (columns).

    Args:
        joints (np.ndarray): (n, 3 + L) float64 candidate rows.
        group_tags (np.ndarray): (G, L) float32 group mean tags.
        use_value (bool): Cost ``round(dist) * 100 - value`` if True, else
            ``dist``.

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
    return dist, min_cost_assignment(cost)


def min_cost_assignment(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost assignment of every row to a distinct column.

    Shortest-augmenting-path Hungarian method with dual potentials, started
    from a row reduction and a greedy match of each row (in order) to its
    first free cheapest column. Ties are resolved toward the lowest column
    index. This makes the chosen optimum — not only its cost — the same as
    the ``munkres`` 3.0 package used by the official decoder to produce our
    reference outputs; with its many equal costs (rounded distances, duplicate
    peaks), SciPy's ``linear_sum_assignment`` picks other optima and groups
    people differently.

    Args:
        cost (np.ndarray): (n, m) float64 finite costs, n <= m.

    Returns:
        np.ndarray: (n, ) int64 column assigned to each row.
    """
    num_rows, num_cols = cost.shape
    if num_rows > num_cols:
        raise ValueError('min_cost_assignment needs rows <= columns')
    row_pot = cost.min(axis=1) if num_cols else np.zeros(num_rows)
    col_pot = np.zeros(num_cols + 1)  # index num_cols: the virtual start
    owner = np.full(num_cols + 1, -1, np.int64)  # row holding each column
    unmatched = []
    for row in range(num_rows):
        free_min = np.flatnonzero((cost[row] == row_pot[row])
                                  & (owner[:num_cols] < 0))
        if free_min.size:
            owner[free_min[0]] = row
        else:
            unmatched.append(row)
    for row in unmatched:
        _augment(cost, row, row_pot, col_pot, owner)
    col_of_row = np.empty(num_rows, np.int64)
    taken = np.flatnonzero(owner[:num_cols] >= 0)
    col_of_row[owner[taken]] = taken
    return col_of_row


def _augment(cost: np.ndarray, row: int, row_pot: np.ndarray,
             col_pot: np.ndarray, owner: np.ndarray) -> None:
    """Match ``row`` along a shortest augmenting path (Dijkstra on reduced
    costs), updating potentials and ``owner`` in place."""
    num_cols = cost.shape[1]
    start = num_cols
    owner[start] = row
    slack = np.full(num_cols, np.inf)  # best reduced cost to each column
    came_from = np.zeros(num_cols, np.int64)
    visited = np.zeros(num_cols + 1, bool)
    col = start
    while True:
        visited[col] = True
        cur_row = owner[col]
        # same operation order as the reference solver: (c - u) - v
        reduced = cost[cur_row] - row_pot[cur_row] - col_pot[:num_cols]
        better = ~visited[:num_cols] & (reduced < slack)
        slack[better] = reduced[better]
        came_from[better] = col
        open_slack = np.where(visited[:num_cols], np.inf, slack)
        nxt = int(np.argmin(open_slack))  # first column among equal slacks
        delta = open_slack[nxt]
        if not np.isfinite(delta):
            raise ValueError('no finite assignment exists')
        row_pot[owner[visited]] += delta
        col_pot[visited] -= delta
        slack[~visited[:num_cols]] -= delta
        col = nxt
        if owner[col] < 0:
            break
    while col != start:  # flip the path back to the start
        prev = came_from[col]
        owner[col] = owner[prev]
        col = prev


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
    ones). The value there must be > 0 to be used; the position gets the same
    +0.5 and quarter-pixel offset as :func:`_adjust_in_place`; the tag
    columns stay 0.

    Args:
        grouped (np.ndarray): (P, K, 3 + L); missing joints have value 0.
            Modified in place.
        heatmaps (np.ndarray): (K, H, W) float32.
        tags (np.ndarray): (K, H, W, L) float32.
        blocks (_Blocks, optional): Block maxima of ``heatmaps``, to try the
            strongest pixels first; ``None`` scores the whole maps.
    """
    missing_person, missing_type = np.nonzero(grouped[:, :, 2] == 0)
    if missing_person.size == 0:
        return
    person_tag = _person_tags(grouped, tags)
    num_joints, height, width = heatmaps.shape
    hm_flat = heatmaps.reshape(num_joints, -1)
    tag_flat = tags.reshape(num_joints, height * width, -1)
    best = np.empty(missing_person.size, np.int64)
    for joint_type in np.unique(missing_type):
        pairs = np.flatnonzero(missing_type == joint_type)
        best[pairs] = _argmax_refine_score(
            hm_flat[joint_type], tag_flat[joint_type],
            person_tag[missing_person[pairs]],
            None if blocks is None else blocks.strongest(joint_type))
    y, x = np.divmod(best, width)
    value = hm_flat[missing_type, best]
    fill = value > 0
    dx, dy = _quarter_offsets(heatmaps, missing_type, x, y)
    person, joint_type = missing_person[fill], missing_type[fill]
    grouped[person, joint_type, 0] = (x + dx + 0.5)[fill]
    grouped[person, joint_type, 1] = (y + dy + 0.5)[fill]
    grouped[person, joint_type, 2] = value[fill]


def _argmax_refine_score(hm_flat: np.ndarray, tag_flat: np.ndarray,
                         person_tag: np.ndarray,
                         strongest: Optional[Tuple[np.ndarray, float, int]]
                         ) -> np.ndarray:
    """First raster-order argmax of ``heatmap - round(|tag - person_tag|)``.

    A pixel's score is never above its heatmap value. So the pixels of the
    strongest blocks are scored first; a person is settled there if every
    other pixel has a smaller heatmap value than the best score found, or an
    equal one but only later in raster order (so it could at most tie and
    lose the tie). The others are scored on the whole map.

    Args:
        hm_flat (np.ndarray): (H*W, ) float32 heatmap of one joint type.
        tag_flat (np.ndarray): (H*W, L) float32 tags of that joint type.
        person_tag (np.ndarray): (N, L) float32 mean tags of N people.
        strongest (tuple, optional): From :meth:`_Blocks.strongest`: pixels
            (n, ) of the strongest blocks, the largest heatmap value outside
            them and the first raster index outside them holding a value
            that large. ``None`` scores the whole map for everyone.

    Returns:
        np.ndarray: (N, ) flat pixel index of each person's best pixel.
    """
    best_idx = np.empty(person_tag.shape[0], np.int64)
    unsettled = np.arange(person_tag.shape[0])
    if strongest is not None:
        pixels, outside_max, outside_first = strongest
        score = _refine_scores(hm_flat[pixels], tag_flat[pixels].T,
                               person_tag)
        top = score.max(axis=1)
        # block pixels are not in raster order: lowest index among maxima
        best_idx[:] = np.where(score == top[:, None], pixels[None],
                               hm_flat.size).min(axis=1)
        settled = (top > outside_max) | ((top == outside_max) &
                                         (best_idx < outside_first))
        unsettled = unsettled[~settled]
    if unsettled.size:
        # (L, H*W): one contiguous plane per tag dimension
        planes = np.ascontiguousarray(tag_flat.T)
        best_idx[unsettled] = _refine_scores(
            hm_flat, planes, person_tag[unsettled]).argmax(axis=1)
    return best_idx


def _refine_scores(heat: np.ndarray, planes: np.ndarray,
                   person_tag: np.ndarray) -> np.ndarray:
    """``heat - round(|tag - person_tag|)`` for every person and pixel.

    Same float32 operations and summation order as the official
    ``np.round(((tag - t) ** 2).sum(axis=2) ** 0.5)`` (numpy adds fewer than 8
    terms one by one; longer tags go through the same numpy reduction).

    Args:
        heat (np.ndarray): (n, ) float32 heatmap values.
        planes (np.ndarray): (L, n) float32 tags.
        person_tag (np.ndarray): (N, L) float32.

    Returns:
        np.ndarray: (N, n) float32 scores.
    """
    tag_dim = planes.shape[0]
    if tag_dim >= 8:
        diff = planes.T[None] - person_tag[:, None, :]
        sq_dist = (diff * diff).sum(axis=2)
    else:
        sq_dist = None
        for dim in range(tag_dim):
            term = planes[dim][None] - person_tag[:, dim, None]
            term *= term
            if sq_dist is None:
                sq_dist = term
            else:
                sq_dist += term
    np.sqrt(sq_dist, out=sq_dist)
    np.round(sq_dist, out=sq_dist)
    return np.subtract(heat[None], sq_dist, out=sq_dist)


class _Blocks:
    """The heatmaps cut into ``side x side`` blocks, with each block's max.

    The local-maximum map of the NMS already holds the maximum of the
    ``side x side`` window centred on every pixel, so sampling it at the
    block centres (clamped to the map for partial border blocks, whose window
    still covers them) gives all block maxima for free.

    Args:
        local_max (torch.Tensor): (K, H, W) window maxima, window ``side``.
        side (int): Odd block side (the NMS kernel).
    """

    def __init__(self, local_max: torch.Tensor, side: int):
        _, height, width = local_max.shape
        rows, cols = -(-height // side), -(-width // side)
        centre_y = (torch.arange(rows) * side + side // 2).clamp_(
            max=height - 1)
        centre_x = (torch.arange(cols) * side + side // 2).clamp_(
            max=width - 1)
        self.max = local_max.index_select(1, centre_y).index_select(
            2, centre_x).flatten(1).numpy()  # (K, rows * cols), a copy
        self.side, self.width, self.cols = side, width, cols
        self.height = height

    def strongest(self, joint_type: int,
                  count: int = None) -> Tuple[np.ndarray, float, int]:
        """Pixels of the ``count`` blocks with the largest maxima.

        Args:
            joint_type (int): Which heatmap.
            count (int, optional): Number of blocks; default
                ``_STRONG_BLOCKS``.

        Returns:
            tuple: flat pixel indices (n, ) of those blocks; the largest
            block maximum among the other blocks (-inf if none); the first
            pixel index of the first other block reaching that maximum
            (a lower bound on where such a value can be).
        """
        block_max = self.max[joint_type]
        count = min(_STRONG_BLOCKS if count is None else count,
                    block_max.size)
        chosen = np.argpartition(-block_max, count - 1)[:count] \
            if count < block_max.size else np.arange(block_max.size)
        others = np.ones(block_max.size, bool)
        others[chosen] = False
        if not others.any():
            return self._pixels(chosen), -np.inf, 0
        outside_max = block_max[others].max()
        first_block = np.flatnonzero(others & (block_max == outside_max))[0]
        return (self._pixels(chosen), float(outside_max),
                int(self._first_pixel(first_block)))

    def _first_pixel(self, block):
        """Flat index of a block's top-left pixel, its smallest index."""
        return (block // self.cols * self.side * self.width +
                block % self.cols * self.side)

    def _pixels(self, block: np.ndarray) -> np.ndarray:
        """Flat indices of the pixels of ``block`` inside the map."""
        offset = np.arange(self.side)
        y = (block // self.cols * self.side)[:, None, None] + offset[:, None]
        x = (block % self.cols * self.side)[:, None, None] + offset[None, :]
        inside = (y < self.height) & (x < self.width)
        return (y * self.width + x)[inside]
