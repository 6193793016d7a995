"""Decoder inputs for tests and benchmarks, in the layout the head hands to
the decoder: heatmaps (B, K, H, W) and tags (B, L*K, H, W) with channel
``l * K + k``.

- :func:`official_cases` reads the official decoder fixtures (stored with
  tags (K, H, W, L)) and converts their tags once.
- :func:`real_size_maps` builds the maps of a real-size test input: the
  network outputs of both flip-test views (Gaussian peaks on real annotated
  poses with varied heights, a noisy background, per-person tags), then
  the plugin's own test-time aggregation (:func:`aggregate_views`), so the
  maps carry what a trained model's do after upsampling: plateaus of tied
  peaks, smooth noise, and joints that are not visible.
"""
import json
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..codecs.multi_resolution_ae import gaussian_heatmaps
from ..models.postprocess import OutputLayout, aggregate_views
from .oracle import keypoint_patches
from .shared import SHARED_ROOT

#: COCO's left-right keypoint swap (MMPose's ``flip_indices``).
COCO_FLIP_INDICES = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16,
                     15)
#: Network input (w, h) of an 810 x 1080 portrait photo: the short side at
#: the model's input size, the long side rounded up to a multiple of 64.
REAL_INPUT_SIZES = {'W32-512': (512, 704), 'W48-640': (640, 896)}
DEFAULT_ANN_FILE = SHARED_ROOT / 'data' / 'coco' / 'test_coco.json'


def tags_to_head_layout(tags: np.ndarray) -> np.ndarray:
    """(K, H, W, L) tags -> (L*K, H, W), channel ``l * K + k`` (a copy)."""
    num_joints, height, width, tag_dim = tags.shape
    return np.ascontiguousarray(np.moveaxis(tags, -1, 0)).reshape(
        tag_dim * num_joints, height, width)


def tags_per_joint(tags: np.ndarray, num_joints: int) -> np.ndarray:
    """(L*K, H, W) tags in the head's layout -> (K, H, W, L) (a view), the
    layout of the official decoder and the reference loop."""
    return np.moveaxis(tags.reshape(-1, num_joints, *tags.shape[1:]), 0, -1)


def official_cases(path: Union[str, Path]) -> List[Dict]:
    """The official decoder fixture cases, tags in the head's layout.

    Args:
        path: ``official_decoder_cases.npz`` (or the CrowdPose file).

    Returns:
        list[dict]: per case ``name``, ``heatmaps`` (K, H, W) and ``tags``
        (L*K, H, W) float32, and ``expected[mode]`` = (grouped, scores) for
        modes ``adjust_refine`` and ``plain``.
    """
    with np.load(path) as data:
        ids = sorted(int(key[4:-len('_heatmaps')]) for key in data.files
                     if key.endswith('_heatmaps'))
        return [
            dict(
                name=f'case{i}',
                heatmaps=data[f'case{i}_heatmaps'],
                tags=tags_to_head_layout(data[f'case{i}_tags']),
                expected={
                    mode: (data[f'case{i}_{mode}_grouped'],
                           data[f'case{i}_{mode}_scores'])
                    for mode in ('adjust_refine', 'plain')
                }) for i in ids
        ]


def annotated_poses(ann_file: Union[str, Path] = DEFAULT_ANN_FILE,
                    min_keypoints: int = 8
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Poses of the annotated people, each normalised to its bounding box
    of its labelled keypoints (x, y in [0, 1], height 1).

    Returns:
        tuple: keypoints (N, K, 2) and visibility (N, K) float32.
    """
    data = json.loads(Path(ann_file).read_text())
    poses, visible = [], []
    for ann in data['annotations']:
        if ann.get('num_keypoints', 0) < min_keypoints:
            continue
        kpts = np.array(ann['keypoints'], np.float64).reshape(-1, 3)
        seen = kpts[:, 2] > 0
        low, high = kpts[seen, :2].min(0), kpts[seen, :2].max(0)
        height = max(high[1] - low[1], 1.0)
        poses.append((kpts[:, :2] - low) / height)
        visible.append(seen.astype(np.float32))
    return np.stack(poses), np.stack(visible)


def place_people(num_people: int, input_size: Tuple[int, int],
                 rng: np.random.Generator,
                 ann_file: Union[str, Path] = DEFAULT_ANN_FILE
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """``num_people`` annotated poses (drawn with replacement) scaled and
    placed at random in the input, smaller when there are more of them.

    Returns:
        tuple: keypoints (P, K, 2) in input pixels and visibility (P, K).
    """
    poses, visible = annotated_poses(ann_file)
    width, height = input_size
    pick = rng.integers(0, len(poses), num_people)
    typical = height * min(0.8, 1.6 / np.sqrt(num_people))
    keypoints = np.empty((num_people, poses.shape[1], 2))
    for n, index in enumerate(pick):
        scale = typical * rng.uniform(0.7, 1.1)
        pose = poses[index] * scale
        room = np.maximum(np.asarray(input_size) - pose.max(axis=0), 1.0)
        keypoints[n] = pose + rng.uniform(0, 1, 2) * room
    return keypoints, visible[pick]


def _view_outputs(keypoints: np.ndarray, visible: np.ndarray,
                  peak_values: np.ndarray, person_tags: np.ndarray,
                  input_size: Tuple[int, int], flipped: bool,
                  peak_jitter: float,
                  rng: np.random.Generator) -> List[Tensor]:
    """Outputs (1/4 resolution with tags, 1/2 without) of one view."""
    width = input_size[0]
    if flipped:
        keypoints = keypoints.copy()
        keypoints[..., 0] = width - 1 - keypoints[..., 0]
        order = list(COCO_FLIP_INDICES)
        keypoints, visible = keypoints[:, order], visible[:, order]
        peak_values = peak_values[:, order]
    outputs = []
    for level in range(2):
        size = (input_size[0] // 4 * 2**level, input_size[1] // 4 * 2**level)
        points = keypoints * size[0] / width
        heatmaps = np.zeros((points.shape[1], size[1], size[0]))
        for n in range(len(points)):
            person = gaussian_heatmaps(points[n:n + 1], visible[n:n + 1],
                                       size, sigma=2.0)
            person *= peak_values[n][:, None, None]
            np.maximum(heatmaps, person, out=heatmaps)
        if peak_jitter:
            # a trained model's peaks are not exactly symmetric
            heatmaps *= 1 + rng.normal(0, peak_jitter, heatmaps.shape)
        np.maximum(heatmaps, rng.uniform(-0.01, 0.03, heatmaps.shape),
                   out=heatmaps)
        maps = [heatmaps]
        if level == 0:
            maps.append(_tag_maps(points, visible, person_tags, size, rng))
        outputs.append(
            torch.from_numpy(np.concatenate(maps).astype(np.float32))[None])
    return outputs


def _tag_maps(points: np.ndarray, visible: np.ndarray,
              person_tags: np.ndarray, size: Tuple[int, int],
              rng: np.random.Generator, radius: int = 2) -> np.ndarray:
    """(K, h, w): each person's tag (slightly noisy) around its visible
    keypoints, uniform noise over the same range elsewhere."""
    width, height = size
    spread = np.abs(person_tags).max() + 2
    tags = rng.uniform(-spread, spread, (points.shape[1], height, width))
    for n, k, rows, cols in keypoint_patches(points, visible, size, radius):
        patch = tags[k, rows, cols]
        patch[...] = person_tags[n] + rng.normal(0, 0.05, patch.shape)
    return tags


def real_size_maps(num_people: int,
                   input_size: Tuple[int, int] = REAL_INPUT_SIZES['W32-512'],
                   flip_test: bool = True,
                   seed: int = 0,
                   peak_jitter: float = 0.02,
                   ann_file: Union[str, Path] = DEFAULT_ANN_FILE
                   ) -> Tuple[Tensor, Tensor]:
    """Aggregated test maps of one image with ``num_people`` people.

    Args:
        num_people (int): People in the image (poses from ``ann_file``).
        input_size (tuple): Network input (w, h), multiples of 4.
        flip_test (bool): Two views (tags L = 2) or one (L = 1).
        seed (int): Random seed of placement, peaks, tags and noise.
        peak_jitter (float): Relative noise on the Gaussians. With 0 they
            are symmetric and upsampling turns every peak into a plateau
            of tied pixels, all of which survive NMS (tie-heavy maps).
        ann_file: COCO keypoint annotations to draw the poses from.

    Returns:
        tuple: heatmaps (1, K, h, w) and tags (1, L*K, h, w), float32, at
        the input resolution, as the head hands them to the decoder.
    """
    rng = np.random.default_rng(seed)
    keypoints, visible = place_people(num_people, input_size, rng, ann_file)
    peak_values = rng.uniform(0.35, 0.95, visible.shape)
    person_tags = 2.0 * (np.arange(num_people) - (num_people - 1) / 2)
    person_tags = rng.permutation(person_tags) + rng.normal(
        0, 0.1, num_people)
    views = [
        _view_outputs(keypoints, visible, peak_values, person_tags,
                      input_size, flipped, peak_jitter, rng)
        for flipped in ((False, True) if flip_test else (False, ))
    ]
    layout = OutputLayout(num_keypoints=visible.shape[1])
    return aggregate_views([views], layout, input_size[::-1],
                           COCO_FLIP_INDICES)
