"""Test-time resize of HigherHRNet: one image per test scale."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmpose.registry import TRANSFORMS
from mmpose.structures.bbox import get_warp_matrix


def multi_scale_input(img_size: Tuple[int, int], short_side: int,
                      scale: float, min_scale: float, size_factor: int
                      ) -> Tuple[Tuple[int, int], np.ndarray, np.ndarray]:
    """Network input size of one test scale, as the official code picks it.

    The short image side goes to ``short_side * scale``; both sides are
    rounded up to a multiple of ``size_factor`` at the smallest scale and
    multiplied up from there, so every scale keeps the same aspect ratio and
    the smallest one is still aligned.

    Args:
        img_size (tuple): image (w, h).
        short_side (int): input size at scale 1.
        scale (float): this test scale.
        min_scale (float): the smallest test scale.
        size_factor (int): alignment (64 for HigherHRNet).

    Returns:
        tuple: input (w, h); centre (2, ) and scale (2, ) in image pixels
        (the image box mapped onto the whole input).
    """
    w, h = img_size
    ratio = scale / min_scale
    min_input = math.ceil(min_scale * short_side / size_factor) * size_factor
    short, long = (w, h) if w < h else (h, w)
    resized_short = int(min_input * ratio)
    resized_long = int(
        math.ceil(min_input / short * long / size_factor) * size_factor *
        ratio)
    box_long = resized_long / resized_short * short
    if w < h:
        input_size, box = (resized_short, resized_long), (w, box_long)
    else:
        input_size, box = (resized_long, resized_short), (box_long, h)
    # The official centre is rounded to whole pixels.
    center = np.array([int(w / 2.0 + 0.5), int(h / 2.0 + 0.5)], np.float32)
    return input_size, center, np.array(box, np.float32)


@TRANSFORMS.register_module()
class HigherHRNetResize(BaseTransform):
    """Resize (and pad by affine) an image for HigherHRNet testing.

    Produces the base-scale input and, with ``aug_scales``, one more input per
    extra scale; the metainfo describes the base scale, whose maps all others
    are projected to.

    Required Keys: img, ori_shape

    Modified Keys: img, img_shape

    Added Keys: input_size, input_center, input_scale, aug_scales (with
    extra scales)

    Args:
        input_size (tuple): (w, h) at scale 1; its short side is used.
        aug_scales (Sequence[float], optional): extra test scales, e.g.
            ``[2, 0.5]`` for the paper's multi-scale test.
        size_factor (int): alignment of the input sides. Defaults to 64.
        pad_val (float): border value. Defaults to 0.
    """

    def __init__(self,
                 input_size: Tuple[int, int],
                 aug_scales: Optional[Sequence[float]] = None,
                 size_factor: int = 64,
                 pad_val: float = 0):
        super().__init__()
        self.input_size = tuple(input_size)
        self.aug_scales = list(aug_scales) if aug_scales else None
        self.size_factor = size_factor
        self.pad_val = pad_val

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        img_h, img_w = results['ori_shape'][:2]
        scales: List[float] = [1.0] + (self.aug_scales or [])
        imgs = []
        for i, scale in enumerate(scales):
            input_size, center, box = multi_scale_input(
                (img_w, img_h), min(self.input_size), scale, min(scales),
                self.size_factor)
            warp_mat = get_warp_matrix(center, box, 0, input_size)
            imgs.append(
                cv2.warpAffine(
                    img,
                    warp_mat,
                    input_size,
                    flags=cv2.INTER_LINEAR,
                    borderValue=self.pad_val))
            if i == 0:
                results['img_shape'] = input_size[::-1]
                results['input_size'] = input_size
                results['input_center'] = center
                results['input_scale'] = box
        if self.aug_scales:
            results['img'] = imgs
            results['aug_scales'] = self.aug_scales
        else:
            results['img'] = imgs[0]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(input_size={self.input_size}, '
                f'aug_scales={self.aug_scales}, '
                f'size_factor={self.size_factor})')
