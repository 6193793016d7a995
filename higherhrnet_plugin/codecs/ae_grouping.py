"""Associative-embedding grouping: heatmaps + tag maps -> people.

This is the decoder of Associative Embedding / HigherHRNet, written to give
the same people as the official HigherHRNet implementation (checked against
its outputs in ``tests/test_ae_grouping.py``) while reading as little of the
maps as possible:

1. NMS: a pixel survives if it equals the maximum of its ``k x k``
   neighbourhood; top-k peaks per joint type, in the order ``torch.topk``
   gives them on the official suppressed map, ties included (they decide
   which duplicate joins a group and which one seeds a new group).
2. Greedy grouping, one joint type after another, with a Hungarian assignment
   between the new candidates and the existing groups (cost
   ``round(tag distance) * 100 - value``; among equal-cost optima the one
   ``munkres`` 1.1.x picks, see :mod:`.assignment`).
3. Quarter-pixel adjustment towards the higher neighbour, +0.5 pixel centre.
4. Person score = mean joint value (missing joints count as 0).
5. Refinement: a missing joint is taken at the argmax of
   ``heatmap - round(|tag - person tag|)`` (first pixel in raster order
   among equal scores).

The maps come in the head's layout, heatmaps (B, K, H, W) and tags
(B, L*K, H, W) with channel ``l * K + k``, and are read where they live
(:mod:`.ae_maps`): on the CPU, NMS and refinement look only at the tiles
that can matter; on a GPU, NMS and top-k run there for the whole batch and
only the peaks come back.

Shapes: B images, K joint types, H x W maps, L tag dimensions (1, or 2 with
flip test), P people.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .ae_maps import DeviceMaps, HostMaps
from .assignment import ASSIGNMENT_SOLVERS, min_cost_assignment

ArrayLike = Union[np.ndarray, torch.Tensor]

#: COCO grouping order of the official implementation: head, shoulders,
#: hips, then the limbs outwards.
COCO_KEYPOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15,
                       16)

# Cost of an assignment to a padding column: "this candidate starts a group".
_PAD_COST = 1e10
#: Where an image's maps are read (on the CPU or on their device).
MapReader = Union[HostMaps, DeviceMaps]


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
        max_offered_groups (int): Only the first ``max_offered_groups``
            groups (in creation order) are offered to the candidates of a
            joint type; later groups can still be created and are returned.
            The official ``MAX_NUM_PEOPLE`` of the decoder. Defaults to 30.
        max_instances (int, optional): At most this many people are
            returned: those with the highest scores (equal scores: the
            earlier created), in creation order. ``None`` (default, as the
            official decoder) returns every group.
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
    max_offered_groups: int = 30
    max_instances: Optional[int] = None
    keypoint_order: Optional[Sequence[int]] = None
    use_detection_value: bool = True
    adjust: bool = True
    refine: bool = True
    assignment_solver: str = 'munkres-1.1'

    def __post_init__(self):
        if self.max_instances is not None and self.max_instances < 1:
            raise ValueError('max_instances (decode_max_instances in the '
                             'codec) must be None or >= 1, got '
                             f'{self.max_instances}')
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
        tags (np.ndarray | torch.Tensor): (L*K, H, W) tag maps, channel
            ``l * K + k`` (the head's layout).
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
    return batch_group_keypoints(heatmaps[None], tags[None], cfg)[0]


def batch_group_keypoints(heatmaps: ArrayLike,
                          tags: ArrayLike,
                          cfg: Optional[AEGroupingConfig] = None,
                          on_device: Optional[bool] = None
                          ) -> List[Tuple[np.ndarray, np.ndarray]]:
    """:func:`group_keypoints` for every image of a batch.

    Args:
        heatmaps (np.ndarray | torch.Tensor): (B, K, H, W).
        tags (np.ndarray | torch.Tensor): (B, L*K, H, W), channel
            ``l * K + k``.
        cfg (AEGroupingConfig, optional): Settings; defaults if ``None``.
        on_device (bool, optional): Run NMS and top-k with PyTorch where the
            maps are, batched (:class:`DeviceMaps`), instead of NumPy on the
            CPU (:class:`HostMaps`, the official results bit for bit).
            ``None``: on the device if the heatmaps are a tensor on a
            device other than the CPU.

    Returns:
        list: per image, (grouped, scores) as :func:`group_keypoints`.
    """
    cfg = AEGroupingConfig() if cfg is None else cfg
    return [_decode(maps, cfg) for maps in _map_readers(
        heatmaps, tags, cfg, on_device)]


def _map_readers(heatmaps: ArrayLike, tags: ArrayLike,
                 cfg: AEGroupingConfig,
                 on_device: Optional[bool]) -> List[MapReader]:
    """Check the shapes and wrap every image's maps, without copying them
    (unless they are not float32 or not contiguous)."""
    if heatmaps.ndim != 4:
        raise ValueError('heatmaps must be (K, H, W) per image, got '
                         f'{tuple(heatmaps.shape[1:])}')
    batch, num_joints, height, width = heatmaps.shape
    if (tags.ndim != 4 or tags.shape[0] != batch
            or tuple(tags.shape[2:]) != (height, width)
            or tags.shape[1] % num_joints or tags.shape[1] == 0):
        raise ValueError(
            f'tags must be (L*K, H, W) per image with heatmaps (K, H, W) = '
            f'{(num_joints, height, width)}, got {tuple(tags.shape[1:])}')
    if on_device is None:
        on_device = (isinstance(heatmaps, torch.Tensor)
                     and heatmaps.device.type != 'cpu')
    if on_device:
        heatmaps = torch.as_tensor(heatmaps).detach().float()
        tags = torch.as_tensor(tags).detach().to(heatmaps.device,
                                                 torch.float32)
        return DeviceMaps.batch(heatmaps, tags, cfg.nms_kernel, cfg.topk)
    heatmaps, tags = (np.asarray(
        x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x,
        np.float32) for x in (heatmaps, tags))
    return [HostMaps(h, t, cfg.nms_kernel) for h, t in zip(heatmaps, tags)]


def _decode(maps: MapReader,
            cfg: AEGroupingConfig) -> Tuple[np.ndarray, np.ndarray]:
    """Peaks -> groups -> adjusted and refined people, for one image."""
    vals, flat_idx, peak_tags = maps.peaks(cfg.topk,
                                           cfg.detection_threshold)
    order = cfg.joint_order(vals.shape[0])
    peak_xy = np.stack([flat_idx % maps.width, flat_idx // maps.width],
                       axis=-1)
    grouped = _match_by_tag(vals, peak_xy, peak_tags, order, cfg)
    if grouped.shape[0] == 0:
        return grouped, np.zeros((0, ), np.float32)

    if cfg.adjust:
        _adjust_in_place(grouped, maps)
    # scored before refinement (as officially); each person is refined on
    # its own, so the people not returned need not be
    grouped, scores = _best_instances(grouped,
                                      grouped[:, :, 2].mean(axis=1),
                                      cfg.max_instances)
    if cfg.refine:
        _refine_in_place(grouped, maps)
    return grouped, scores


def _best_instances(grouped: np.ndarray, scores: np.ndarray,
                    max_instances: Optional[int]
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """The ``max_instances`` people with the highest scores (all if
    ``None``), kept in creation order."""
    if max_instances is None or len(scores) <= max_instances:
        return grouped, scores
    best = np.sort(np.argsort(-scores, kind='stable')[:max_instances])
    return grouped[best], scores[best]


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
        # each group's member tags in the order they joined (at most one
        # per joint type), their count, running sums and the cached means
        self._members = np.zeros((capacity, num_joints, row_len - 3),
                                 np.float32)
        self._count = np.zeros(capacity, np.int64)
        self._sums = np.zeros((capacity, row_len - 3), np.float32)
        self._means = np.zeros((capacity, row_len - 3), np.float32)
        self._stale = np.zeros(capacity, bool)
        self._by_key = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def start(self, joint_type: int, joint: np.ndarray,
              tag: np.ndarray) -> None:
        """Start a group from ``joint`` (or reset the one with its key)."""
        key = float(tag[0])
        group = self._by_key.setdefault(key, len(self._by_key))
        self.joints[group, joint_type] = joint
        self._members[group, 0] = tag
        self._count[group] = 1
        np.add(np.float32(0), tag, out=self._sums[group])
        self._stale[group] = True

    def add(self, group: int, joint_type: int, joint: np.ndarray,
            tag: np.ndarray) -> None:
        """Put ``joint`` into an existing group."""
        self.joints[group, joint_type] = joint
        self._members[group, self._count[group]] = tag
        self._count[group] += 1
        np.add(self._sums[group], tag, out=self._sums[group])
        self._stale[group] = True

    def mean_tags(self, count: int) -> np.ndarray:
        """(count, L) float32 mean tag of the first ``count`` groups.

        The official code takes ``np.mean`` of each group's stacked float32
        members, and the rounding of the mean can decide ``round(distance)``
        at .5. That sum starts from 0 and adds the members in order, in
        float32 (for L = 1 from 8 members on, in NumPy's pairwise blocks
        instead), then divides by the count: the running sums give it,
        and the pairwise case takes ``np.mean`` over axis 1 of the groups
        with the same number of members, which sums each group as
        ``np.mean`` of its own list does.
        """
        stale = np.flatnonzero(self._stale[:count])
        members = self._count[stale]
        pairwise = (members >= 8) & (self._sums.shape[1] == 1)
        running = stale[~pairwise]
        self._means[running] = (self._sums[running] /
                                self._count[running, None].astype(np.float32))
        for size in np.unique(members[pairwise]):
            groups = stale[pairwise][members[pairwise] == size]
            self._means[groups] = np.mean(self._members[groups, :size],
                                          axis=1)
        self._stale[stale] = False
        return self._means[:count].copy()

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
        num_offered = min(len(groups), cfg.max_offered_groups)
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


def _adjust_in_place(grouped: np.ndarray, maps: MapReader) -> None:
    """Shift every found joint a quarter pixel up the heatmap, +0.5 centre.

    Args:
        grouped (np.ndarray): (P, K, 3 + L), integer positions; modified.
        maps (HostMaps | DeviceMaps): The image's maps.
    """
    person, joint_type = np.nonzero(grouped[:, :, 2] > 0)
    x = grouped[person, joint_type, 0].astype(np.int64)
    y = grouped[person, joint_type, 1].astype(np.int64)
    dx, dy = maps.quarter_offsets(joint_type, y * maps.width + x)
    grouped[person, joint_type, 0] = x + dx + 0.5
    grouped[person, joint_type, 1] = y + dy + 0.5


def _person_tags(grouped: np.ndarray) -> np.ndarray:
    """(P, L) float32 mean tag of each person's found joints.

    A found joint's row holds the tags under its peak, which is where the
    official code reads them (the integer part of the adjusted position);
    joints are averaged in joint-index order with ``np.mean`` on float32,
    as the official code does (the order and precision matter for
    ``round()`` at .5).
    """
    found = grouped[:, :, 2] > 0
    out = np.empty((grouped.shape[0], grouped.shape[2] - 3), np.float32)
    for person in range(grouped.shape[0]):
        out[person] = np.mean(grouped[person, found[person], 3:], axis=0)
    return out


def _refine_in_place(grouped: np.ndarray, maps: MapReader) -> None:
    """Fill missing joints at argmax(heatmap - round(tag distance)).

    Only the missing (person, joint type) pairs are searched (the official
    code scores every joint type of every person, then keeps the missing
    ones). The value at the best pixel must be > 0 to be used; the position
    gets the same +0.5 and quarter-pixel offset as :func:`_adjust_in_place`;
    the tag columns stay 0.

    Args:
        grouped (np.ndarray): (P, K, 3 + L); missing joints have value 0.
            Modified in place.
        maps (HostMaps | DeviceMaps): The image's maps.
    """
    missing_person, missing_type = np.nonzero(grouped[:, :, 2] == 0)
    if missing_person.size == 0:
        return
    pair_tag = _person_tags(grouped)[missing_person]  # (N, L)
    best, value = maps.refinement_argmax(missing_type, pair_tag)
    fill = value > 0
    person, joint_type, best = (missing_person[fill], missing_type[fill],
                                best[fill])
    y, x = np.divmod(best, maps.width)
    dx, dy = maps.quarter_offsets(joint_type, best)
    grouped[person, joint_type, 0] = x + dx + 0.5
    grouped[person, joint_type, 1] = y + dy + 0.5
    grouped[person, joint_type, 2] = value[fill]
