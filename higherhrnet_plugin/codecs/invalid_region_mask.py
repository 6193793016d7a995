"""Rasterise COCO segmentations of the regions excluded from the loss."""
from typing import List, Tuple

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
