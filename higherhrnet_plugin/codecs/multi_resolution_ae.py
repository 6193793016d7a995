"""Training targets at several output resolutions for HigherHRNet, and the
associative-embedding decode of its aggregated outputs."""
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from torch import Tensor

from mmpose.codecs.base import BaseKeypointCodec
from mmpose.registry import KEYPOINT_CODECS
from .ae_grouping import (AEGroupingConfig, batch_group_keypoints,
                          group_keypoints)
from .invalid_region_mask import valid_region_mask, warp_valid_mask

Size = Tuple[int, int]  # (w, h)


def gaussian_heatmaps(keypoints: np.ndarray, visible: np.ndarray,
                      size: Size, sigma: float) -> np.ndarray:
    """Unnormalised Gaussians on the integer (truncated) keypoint positions,
    merged by max, as the official HigherHRNet target generator draws them.

    The Gaussian is cut to a square of radius ``3 * sigma + 1`` pixels.

    Args:
        keypoints (np.ndarray): (N, K, 2) in heatmap pixels.
        visible (np.ndarray): (N, K); a keypoint is drawn if > 0.
        size (tuple): heatmap (w, h).
        sigma (float): Gaussian sigma in heatmap pixels.

    Returns:
        np.ndarray: (K, h, w) float32.
    """
    w, h = size
    K = keypoints.shape[1]
    heatmaps = np.zeros((K, h, w), dtype=np.float32)
    radius = int(round(3 * sigma + 1))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel_1d = np.exp(-offsets**2 / (2 * sigma**2))
    kernel = np.outer(kernel_1d, kernel_1d)
    xy = keypoints.astype(np.int64)  # truncation toward zero, as official
    inside = _inside(xy, visible, size)
    for n, k in zip(*np.nonzero(inside)):
        x, y = xy[n, k]
        x0, x1 = max(0, x - radius), min(w, x + radius + 1)
        y0, y1 = max(0, y - radius), min(h, y + radius + 1)
        patch = kernel[y0 - y + radius:y1 - y + radius,
                       x0 - x + radius:x1 - x + radius]
        np.maximum(heatmaps[k, y0:y1, x0:x1], patch,
                   out=heatmaps[k, y0:y1, x0:x1])
    return heatmaps


def _inside(xy: np.ndarray, visible: np.ndarray, size: Size) -> np.ndarray:
    w, h = size
    return (visible > 0) & (xy[..., 0] >= 0) & (xy[..., 1] >= 0) & (
        xy[..., 0] < w) & (xy[..., 1] < h)


def keypoint_flat_indices(keypoints: np.ndarray, visible: np.ndarray,
                          size: Size) -> np.ndarray:
    """Where the tag loss reads each keypoint's tag.

    Args:
        keypoints (np.ndarray): (N, K, 2) in tag-map pixels.
        visible (np.ndarray): (N, K).
        size (tuple): tag map (w, h).

    Returns:
        np.ndarray: (N, K, 2) int64: flat index y * w + x of the truncated
        position, and 1 if the keypoint is visible and inside the map.
    """
    xy = keypoints.astype(np.int64)
    valid = _inside(xy, visible, size)
    index = np.where(valid, xy[..., 1] * size[0] + xy[..., 0], 0)
    return np.stack([index, valid.astype(np.int64)], axis=-1)


def first_people_with_keypoints(valid: np.ndarray, max_people: int
                                ) -> np.ndarray:
    """Which persons the tag loss sees: the first ``max_people`` of those
    with at least one valid keypoint (the official target array holds 30).

    Args:
        valid (np.ndarray): (N, K) valid flags.
        max_people (int): at most this many persons are kept.

    Returns:
        np.ndarray: (N, ) bool.
    """
    has_keypoint = valid.any(axis=1)
    return has_keypoint & (np.cumsum(has_keypoint) <= max_people)


@KEYPOINT_CODECS.register_module()
class MultiResolutionAssociativeEmbedding(BaseKeypointCodec):
    """HigherHRNet's codec: encodes keypoints into heatmaps at every output
    resolution (same sigma at all of them), keypoint indices for the tag
    loss, and per-resolution masks of crowd / unannotated persons; decodes
    aggregated heatmaps and tags into people by associative-embedding
    grouping.

    With the defaults the targets are those of the official HigherHRNet
    training (``tests/test_official_train_targets.py``; see
    ``docs/training.md``).

    Note:
        - persons: N (all are drawn; the tags of at most ``max_num_people``
          are trained); keypoints: K
        - resolution i: heatmap size (w_i, h_i); tag dimension: L

    Encoded:
        - heatmaps (List[np.ndarray]): per resolution, (K, h_i, w_i)
        - heatmap_mask (List[np.ndarray]): per resolution, (h_i, w_i); 0 on
          crowd regions, persons without keypoints and outside the image,
          1 elsewhere
        - keypoint_indices (np.ndarray): (N, K, 2) at resolution
          ``tag_level``: flat index y * w + x and a valid flag

    Args:
        input_size (tuple): network input (w, h).
        heatmap_sizes (Sequence[tuple]): (w, h) of every output, lowest
            resolution first.
        sigma (float): Gaussian sigma, in pixels of every resolution.
        tag_level (int): index of the resolution that predicts tags.
        max_num_people (int): the tag loss sees the first this many persons
            that have a keypoint on the tag map (the official array has room
            for 30); the keypoints of later persons get valid flag 0. Every
            person is drawn in the heatmaps.
        flip_about (str): how a horizontally flipped sample (MMPose's
            ``RandomFlip``, which mirrors the input about its last column,
            ``w - 1``) is encoded:

            - ``'output'`` (default, the official training): every output
              resolution is mirrored about its own last column, ``w_i - 1``
              (keypoints and masks), i.e. about ``(w_i - 1) * w / w_i`` in
              input pixels. Flipped targets then sit ``1 - w_i / w`` pixels
              of resolution i to the left of the flipped image's content
              (0.75 at 1/4, 0.5 at 1/2).
            - ``'input'``: the targets are those of the flipped input (the
              mirror about ``w - 1``, scaled to each resolution), so flipped
              and unflipped samples place a joint alike. See
              ``docs/design.md``.
        decode_* : grouping settings, see :class:`AEGroupingConfig`.
            ``decode_assignment_solver`` picks the optimum among equal-cost
            candidate-to-group assignments: ``'munkres-1.1'`` (default)
            that of ``munkres`` 1.1.x, with which the official results were
            produced (``'munkres'``: the installed package; ``'scipy'``).
    """

    auxiliary_encode_keys = {
        'invalid_segs', 'warp_mat', 'ori_shape', 'flip', 'flip_direction'
    }
    field_mapping_table = dict(heatmaps='heatmaps', heatmap_mask='heatmap_mask')
    label_mapping_table = dict(keypoint_indices='keypoint_indices')

    def __init__(self,
                 input_size: Size,
                 heatmap_sizes: Sequence[Size],
                 sigma: float = 2.0,
                 tag_level: int = 0,
                 max_num_people: int = 30,
                 flip_about: str = 'output',
                 decode_nms_kernel: int = 5,
                 decode_topk: int = 30,
                 decode_keypoint_thr: float = 0.1,
                 decode_tag_thr: float = 1.0,
                 decode_max_offered_groups: int = 30,
                 decode_max_instances: Optional[int] = None,
                 decode_keypoint_order: Optional[Sequence[int]] = None,
                 decode_use_detection_value: bool = True,
                 decode_adjust: bool = True,
                 decode_refine: bool = True,
                 decode_assignment_solver: str = 'munkres-1.1'):
        super().__init__()
        if flip_about not in ('output', 'input'):
            raise ValueError('MultiResolutionAssociativeEmbedding: '
                             "flip_about must be 'output' or 'input', got "
                             f'{flip_about!r}')
        self.input_size = tuple(input_size)
        self.heatmap_sizes = [tuple(s) for s in heatmap_sizes]
        self.sigma = sigma
        self.tag_level = tag_level
        self.max_num_people = max_num_people
        self.flip_about = flip_about
        self.grouping = AEGroupingConfig(
            nms_kernel=decode_nms_kernel,
            topk=decode_topk,
            detection_threshold=decode_keypoint_thr,
            tag_threshold=decode_tag_thr,
            max_offered_groups=decode_max_offered_groups,
            max_instances=decode_max_instances,
            keypoint_order=decode_keypoint_order,
            use_detection_value=decode_use_detection_value,
            adjust=decode_adjust,
            refine=decode_refine,
            assignment_solver=decode_assignment_solver)

    def _input_to_level(self, level: int) -> np.ndarray:
        """Scale (sx, sy) from input pixels to pixels of resolution level."""
        return np.array(self.heatmap_sizes[level], np.float64) / np.array(
            self.input_size, np.float64)

    def encode(self,
               keypoints: np.ndarray,
               keypoints_visible: Optional[np.ndarray] = None,
               invalid_segs: Optional[list] = None,
               warp_mat: Optional[np.ndarray] = None,
               ori_shape: Optional[Tuple[int, int]] = None,
               flip: bool = False,
               flip_direction: Optional[str] = None) -> Dict:
        """Encode keypoints given in network-input pixels.

        Args:
            keypoints (np.ndarray): (N, K, 2) in input pixels (after the
                augmentation affine and flip).
            keypoints_visible (np.ndarray, optional): (N, K).
            invalid_segs (list, optional): COCO segmentations (in original
                image pixels) of crowd regions and persons without keypoints.
            warp_mat (np.ndarray, optional): (2, 3) original image -> input
                affine, before the flip; identity if None.
            ori_shape (tuple, optional): original image (h, w).
            flip, flip_direction: whether the input was flipped after the
                affine (only horizontal flips are supported).

        Returns:
            dict: see the class docstring.
        """
        if keypoints_visible is None:
            keypoints_visible = np.ones(keypoints.shape[:2], np.float32)
        # float64 as the official target generator: with power-of-two
        # resolution ratios, scaling to a resolution is then exact
        keypoints = keypoints[..., :2].astype(np.float64)
        flip = self._is_flipped(flip, flip_direction)
        image_mask = valid_region_mask(invalid_segs,
                                       self._image_shape(ori_shape))
        heatmaps, masks = [], []
        for level, size in enumerate(self.heatmap_sizes):
            heatmaps.append(
                gaussian_heatmaps(
                    self._keypoints_at_level(keypoints, level, flip),
                    keypoints_visible, size, self.sigma))
            masks.append(self._level_mask(image_mask, level, warp_mat, flip))
        keypoint_indices = keypoint_flat_indices(
            self._keypoints_at_level(keypoints, self.tag_level, flip),
            keypoints_visible, self.heatmap_sizes[self.tag_level])
        keypoint_indices[~first_people_with_keypoints(
            keypoint_indices[..., 1], self.max_num_people)] = 0
        return dict(
            heatmaps=heatmaps,
            heatmap_mask=masks,
            keypoint_indices=keypoint_indices)

    @staticmethod
    def _is_flipped(flip: bool, flip_direction: Optional[str]) -> bool:
        if flip and flip_direction not in (None, 'horizontal'):
            raise ValueError('MultiResolutionAssociativeEmbedding supports '
                             f'horizontal flips only, got {flip_direction!r}')
        return bool(flip)

    def _image_shape(self, ori_shape: Optional[Tuple[int, int]]
                     ) -> Tuple[int, int]:
        """(h, w) of the original image (the input's if unknown)."""
        if ori_shape is not None:
            return tuple(ori_shape[:2])
        return self.input_size[::-1]

    def _keypoints_at_level(self, keypoints: np.ndarray, level: int,
                            flip: bool) -> np.ndarray:
        """(N, K, 2) keypoints in pixels of resolution ``level``."""
        scaled = keypoints * self._input_to_level(level)
        if not flip or self.flip_about == 'input':
            return scaled
        # Undo RandomFlip's mirror about the input's w - 1, scale, then
        # mirror about this resolution's w_i - 1 (the official flip).
        unflipped_x = (self.input_size[0] - 1) - keypoints[..., 0]
        width = self.heatmap_sizes[level][0]
        scale_x = self._input_to_level(level)[0]
        # evaluated as the official ``res - x - 1``, to the last bit
        scaled[..., 0] = width - unflipped_x * scale_x - 1
        return scaled

    def _level_mask(self, valid: np.ndarray, level: int,
                    warp_mat: Optional[np.ndarray], flip: bool) -> np.ndarray:
        """Valid-pixel mask (h_i, w_i) of resolution ``level``.

        As in the official code, the image's valid mask is warped straight to
        that resolution (image -> input -> level, one affine), so pixels
        outside the image are masked out too. A flip is a column reversal of
        that mask (``flip_about='output'``) or part of the affine
        (``'input'``: image -> input -> mirror -> level).
        """
        matrix = np.eye(3)
        if warp_mat is not None:
            matrix[:2] = warp_mat
        mirror_columns = flip and self.flip_about == 'output'
        if flip and not mirror_columns:
            mirror = np.array([[-1, 0, self.input_size[0] - 1], [0, 1, 0],
                               [0, 0, 1]], np.float64)
            matrix = mirror @ matrix
        scale = np.diag([*self._input_to_level(level), 1.0])
        mask = warp_valid_mask(valid, (scale @ matrix)[:2],
                               self.heatmap_sizes[level])
        return mask[:, ::-1].copy() if mirror_columns else mask

    def decode(self, heatmaps: Union[np.ndarray, Tensor],
               tags: Union[np.ndarray, Tensor]
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Group aggregated maps of one image into people.

        Args:
            heatmaps: (K, H, W), at the network input resolution.
            tags: (L*K, H, W), channel ``l * K + k`` (the head's layout).

        Returns:
            tuple: keypoints (N, K, 2) in the same pixels as the maps
            (the +0.5 pixel-centre shift applied), keypoint scores (N, K) and
            person scores (N, ), the mean keypoint value before refinement.
        """
        return self._people(group_keypoints(heatmaps, tags, self.grouping))

    def batch_decode(self, batch_heatmaps: Tensor, batch_tags: Tensor) -> list:
        """Decode a batch: heatmaps (B, K, H, W), tags (B, L*K, H, W) with
        channel ``l * K + k``; per image the result of :meth:`decode`. Maps
        on a GPU are searched there for the whole batch (see
        :func:`batch_group_keypoints`)."""
        return [
            self._people(result) for result in batch_group_keypoints(
                batch_heatmaps, batch_tags, self.grouping)
        ]

    @staticmethod
    def _people(result: Tuple[np.ndarray, np.ndarray]
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        grouped, scores = result
        return grouped[..., :2], grouped[..., 2], scores
