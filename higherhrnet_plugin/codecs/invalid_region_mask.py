"""The image regions excluded from the heatmap loss, at each resolution."""
from typing import List, Optional, Tuple

import cv2
import numpy as np
from xtcocotools import mask as coco_mask


def rasterize_segmentations(segmentations: List, shape: Tuple[int, int]
                            ) -> np.ndarray:
    """Union of COCO segmentations as a (h, w) float32 0/1 mask.

    Args:
        segmentations (list): each a polygon list, an uncompressed RLE dict
            (crowd annotations) or a compressed RLE.
        shape (tuple): image (h, w).
    """
    h, w = shape
    mask = np.zeros((h, w), np.float32)
    for seg in segmentations:
        if not seg:
            continue
        compressed = isinstance(seg, dict) and isinstance(
            seg.get('counts'), (str, bytes))
        rles = seg if compressed else coco_mask.frPyObjects(seg, h, w)
        decoded = coco_mask.decode(rles)
        if decoded.ndim == 3:  # one channel per polygon
            decoded = decoded.max(axis=2)
        np.maximum(mask, decoded, out=mask)
    return mask


def valid_region_mask(invalid_segs: Optional[List],
                      shape: Tuple[int, int]) -> np.ndarray:
    """(h, w) uint8 mask of the original image: 255 where the loss counts,
    0 on the given segmentations.

    The 0/255 scale is the one the official code warps (see
    :func:`warp_valid_mask`).
    """
    valid = np.full(shape, 255, np.uint8)
    if invalid_segs:
        valid[rasterize_segmentations(invalid_segs, shape) > 0] = 0
    return valid


def warp_valid_mask(valid: np.ndarray, matrix: np.ndarray,
                    size: Tuple[int, int]) -> np.ndarray:
    """Warp a :func:`valid_region_mask` to a heatmap and binarise it.

    As the official code does: a bilinear warp of the uint8 0/255 mask with
    zero border (pixels mapped from outside the image are invalid), then
    value / 255 > 0.5. The uint8 result is rounded, so a bilinear value of
    exactly one half (127.5) becomes 128 and counts as valid, where a float
    warp thresholded at > 0.5 would mask it.

    Args:
        valid (np.ndarray): (h, w) uint8, 255 = valid.
        matrix (np.ndarray): (2, 3) image -> heatmap pixels.
        size (tuple): heatmap (w, h).

    Returns:
        np.ndarray: (h_i, w_i) float32 0/1.
    """
    warped = cv2.warpAffine(
        valid, matrix, tuple(size), flags=cv2.INTER_LINEAR, borderValue=0)
    return (warped > 127).astype(np.float32)
