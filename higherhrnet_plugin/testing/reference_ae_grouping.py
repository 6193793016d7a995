"""Slow reference of the associative-embedding grouping decoder (tests only).

A plain, step-by-step implementation of the decoder described in
``higherhrnet_plugin/codecs/ae_grouping.py``: one joint type, one person and
one full-resolution map at a time, with the assignment solver of
``cfg.assignment_solver`` (the official code calls ``munkres``). It is the
yardstick for the vectorised decoder (equality tests) and the baseline of
``tools/benchmark_decoder.py``. Do not use it outside tests: it is many times
slower.
"""
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from higherhrnet_plugin.codecs.ae_grouping import AEGroupingConfig
from higherhrnet_plugin.codecs.assignment import min_cost_assignment


def reference_group_keypoints(heatmaps, tags, cfg: AEGroupingConfig = None
                              ) -> Tuple[np.ndarray, np.ndarray]:
    """Same results as :func:`higherhrnet_plugin.codecs.group_keypoints`,
    with the tags in the official code's layout.

    Args:
        heatmaps: (K, H, W) array or tensor.
        tags: (K, H, W, L) array or tensor (``testing.decoder_cases.
            tags_per_joint`` turns the head's layout into this).
        cfg (AEGroupingConfig, optional): Settings; defaults if ``None``.

    Returns:
        tuple: grouped (P, K, 3 + L) float32 ``[x, y, value, tags...]`` and
        person scores (P, ) float32.
    """
    cfg = AEGroupingConfig() if cfg is None else cfg
    heatmaps = _numpy32(heatmaps)
    tags = _numpy32(tags)
    num_joints = heatmaps.shape[0]
    tag_dim = tags.shape[-1]

    suppressed = _suppress(heatmaps, cfg.nms_kernel)
    candidates = [
        _candidates(suppressed[k], tags[k], cfg) for k in range(num_joints)
    ]
    people = _group(candidates, cfg.joint_order(num_joints), num_joints,
                    tag_dim, cfg)
    if cfg.adjust:
        for person in people:
            _adjust(person, heatmaps)
    scores = [person[:, 2].mean() for person in people]
    if cfg.refine:
        for person in people:
            _refine(person, heatmaps, tags)
    grouped = np.array(people, np.float32).reshape(-1, num_joints,
                                                   3 + tag_dim)
    return grouped, np.array(scores, np.float32)


def _numpy32(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, np.float32)


def _suppress(heatmaps: np.ndarray, kernel: int) -> torch.Tensor:
    """(K, H, W) heatmaps with every pixel that is not the maximum of its
    ``kernel x kernel`` neighbourhood set to 0."""
    hm = torch.from_numpy(heatmaps)[None]
    pooled = F.max_pool2d(hm, kernel, 1, (kernel - 1) // 2)
    return (hm * torch.eq(pooled, hm).float())[0]


def _candidates(suppressed: torch.Tensor, tag_map: np.ndarray,
                cfg: AEGroupingConfig) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Peaks of one joint type above the detection threshold.

    Returns a list of (row, tag): row = float64 [x, y, value, tag...],
    tag = the float32 tag vector, in decreasing value order.
    """
    width = suppressed.shape[1]
    values, indices = suppressed.reshape(-1).topk(cfg.topk)
    found = []
    for value, index in zip(values.tolist(), indices.tolist()):
        value32 = np.float32(value)
        if float(value32) <= cfg.detection_threshold:
            continue
        x, y = index % width, index // width
        tag = tag_map[y, x]
        row = np.concatenate([[x, y, float(value32)],
                              tag.astype(np.float64)])
        found.append((row, tag))
    return found


def _group(candidates, order, num_joints: int, tag_dim: int,
           cfg: AEGroupingConfig) -> List[np.ndarray]:
    """Greedy grouping in ``order``; groups live in a dict keyed by the first
    tag value of the joint that started them (the official bookkeeping)."""
    joints_of: Dict[float, np.ndarray] = {}
    tags_of: Dict[float, List[np.ndarray]] = {}

    def start_group(joint_type, row, tag):
        key = float(tag[0])
        if key not in joints_of:
            joints_of[key] = np.zeros((num_joints, 3 + tag_dim))
        joints_of[key][joint_type] = row
        tags_of[key] = [tag]

    for joint_type in order:
        found = candidates[joint_type]
        if not found:
            continue
        if not joints_of:
            for row, tag in found:
                start_group(joint_type, row, tag)
            continue
        keys = list(joints_of)[:cfg.max_offered_groups]
        group_tags = [np.mean(tags_of[key], axis=0) for key in keys]
        dist = np.zeros((len(found), len(keys)))
        cost = np.zeros((len(found), len(keys)))
        for i, (row, _) in enumerate(found):
            for j, group_tag in enumerate(group_tags):
                diff = row[3:] - group_tag
                dist[i, j] = np.sqrt(np.sum(diff * diff))
                cost[i, j] = (np.round(dist[i, j]) * 100 - row[2]
                              if cfg.use_detection_value else dist[i, j])
        if len(found) > len(keys):
            padding = np.full((len(found), len(found) - len(keys)), 1e10)
            cost = np.concatenate([cost, padding], axis=1)
        for i, j in enumerate(min_cost_assignment(cost,
                                                  cfg.assignment_solver)):
            row, tag = found[i]
            if j < len(keys) and dist[i, j] < cfg.tag_threshold:
                joints_of[keys[j]][joint_type] = row
                tags_of[keys[j]].append(tag)
            else:
                start_group(joint_type, row, tag)
    return [joints.astype(np.float32) for joints in joints_of.values()]


def _quarter(heatmap: np.ndarray, x: int, y: int) -> Tuple[float, float]:
    """+-0.25 toward the higher neighbour in x and in y (ties: -0.25)."""
    height, width = heatmap.shape
    right, left = heatmap[y, min(x + 1, width - 1)], heatmap[y, max(x - 1, 0)]
    down, up = heatmap[min(y + 1, height - 1), x], heatmap[max(y - 1, 0), x]
    return (0.25 if right > left else -0.25), (0.25 if down > up else -0.25)


def _adjust(person: np.ndarray, heatmaps: np.ndarray) -> None:
    for joint_type in range(person.shape[0]):
        if person[joint_type, 2] > 0:
            x, y = int(person[joint_type, 0]), int(person[joint_type, 1])
            dx, dy = _quarter(heatmaps[joint_type], x, y)
            person[joint_type, 0] = x + dx + 0.5
            person[joint_type, 1] = y + dy + 0.5


def _refine(person: np.ndarray, heatmaps: np.ndarray,
            tags: np.ndarray) -> None:
    """Score every joint type's full map against the person's mean tag and
    fill the joints the person is missing."""
    found_tags = []
    for joint_type in range(person.shape[0]):
        if person[joint_type, 2] > 0:
            x, y = person[joint_type, :2].astype(np.int32)
            found_tags.append(tags[joint_type, y, x])
    person_tag = np.mean(found_tags, axis=0)
    for joint_type in range(person.shape[0]):
        heatmap = heatmaps[joint_type]
        dist = np.sqrt(((tags[joint_type] - person_tag) ** 2).sum(axis=2))
        y, x = np.unravel_index(
            np.argmax(heatmap - np.round(dist)), heatmap.shape)
        value = heatmap[y, x]
        if value > 0 and person[joint_type, 2] == 0:
            dx, dy = _quarter(heatmap, x, y)
            person[joint_type, :3] = (x + 0.5 + dx, y + 0.5 + dy, value)
