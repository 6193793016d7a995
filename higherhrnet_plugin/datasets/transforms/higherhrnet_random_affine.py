"""Training affine of HigherHRNet, with the official sampling."""
from typing import Dict, NamedTuple, Tuple

import cv2
import numpy as np
from mmcv.transforms.utils import cache_randomness

from mmpose.datasets.transforms import BottomupRandomAffine
from mmpose.registry import TRANSFORMS
from mmpose.structures.bbox import bbox_corner2xyxy, bbox_xyxy2corner

# The official code measures the crop in units of 200 original pixels
# (``scale``); drawing the shift bound in the same units keeps it, and so the
# integer range of the shift, bit-identical to the official one.
_PIXELS_PER_SCALE_UNIT = 200


class AffineDraw(NamedTuple):
    """One random draw of the official augmentation."""
    scale_factor: float  # crop side / image side (short or long)
    rotation: float  # degrees, positive turns the content counter-clockwise
    shift: Tuple[int, int]  # crop centre shift (x, y), original pixels


def official_warp_matrix(center: np.ndarray, crop_side: float,
                         rotation: float, input_side: int) -> np.ndarray:
    """Image -> input affine of the official HigherHRNet training.

    The square crop of side ``crop_side`` centred at ``center`` fills the
    ``input_side`` square input, rotated by ``rotation`` about the input's
    centre; there is no half-pixel offset (pixel centres are integers on
    both sides), as in the official code.

    Args:
        center (np.ndarray): (2, ) crop centre (x, y), original pixels.
        crop_side (float): original pixels shown along each input side.
        rotation (float): degrees; positive turns the content
            counter-clockwise on screen.
        input_side (int): input width = height.

    Returns:
        np.ndarray: (2, 3) float64, (x_in, y_in) = M @ (x, y, 1).
    """
    zoom = input_side / crop_side
    theta = np.deg2rad(rotation)
    cos, sin = np.cos(theta) * zoom, np.sin(theta) * zoom
    linear = np.array([[cos, sin], [-sin, cos]])
    offset = np.full(2, input_side / 2) - linear @ np.asarray(center, float)
    return np.concatenate([linear, offset[:, None]], axis=1)


@TRANSFORMS.register_module()
class HigherHRNetRandomAffine(BottomupRandomAffine):
    """``BottomupRandomAffine`` that can draw and build the augmentation as
    the official HigherHRNet ``RandomAffineTransform`` does.

    With ``sampling='official'`` (the default), for an image of (w, h):

    - scale factor f ~ U[scale_factor[0], scale_factor[1]); the square input
      shows a crop of side S = f * min(w, h) (``scale_type='short'``) or
      f * max(w, h) (``'long'``) original pixels, so f > 1 zooms out;
    - rotation r ~ U[-rotate_factor, rotate_factor) degrees;
    - shift: integers dx, dy, each uniform on {int(-t), ..., int(t) - 1}
      with t = shift_factor * S (the official MAX_TRANSLATE 40 per 200 pixels
      of crop is ``shift_factor=0.2``), added to the crop centre
      (w / 2, h / 2);
    - the warp (:func:`official_warp_matrix`) in float64, and the keypoints
      mapped with it in float64.

    ``scale_prob``, ``shift_prob`` and ``rotate_prob`` still switch each draw
    (the official code always draws all three, i.e. probability 1);
    ``distribution`` is not used (the official draws are uniform). The input
    must be square and ``transform_mode`` ``'affine'``.

    ``sampling='mmpose'`` is ``BottomupRandomAffine`` unchanged: float shifts
    of up to ``shift_factor`` times the image's own width / height
    (independent of the scale draw), the draws of ``distribution``, the warp
    from ``get_warp_matrix`` (float32 points) and float32 keypoints. See
    docs/training.md for the comparison.

    Args:
        sampling (str): ``'official'`` or ``'mmpose'``.
        **kwargs: the arguments of ``BottomupRandomAffine``.

    Added Keys (as ``BottomupRandomAffine``):

        - input_size
        - warp_mat: (2, 3) image -> input, before any flip
    """

    def __init__(self, *args, sampling: str = 'official', **kwargs):
        super().__init__(*args, **kwargs)
        if sampling not in ('official', 'mmpose'):
            raise ValueError("HigherHRNetRandomAffine: sampling must be "
                             f"'official' or 'mmpose', got {sampling!r}")
        if sampling == 'official':
            self._check_official_settings()
        self.sampling = sampling

    def _check_official_settings(self):
        size = self.input_size
        if size is None or len(size) != 2 or size[0] != size[1]:
            raise ValueError("HigherHRNetRandomAffine(sampling='official') "
                             f'needs a square input_size, got {size!r}')
        if self.transform_mode != 'affine':
            raise ValueError("HigherHRNetRandomAffine(sampling='official') "
                             "supports transform_mode='affine' only, got "
                             f'{self.transform_mode!r}')
        if self.clip_border:
            raise ValueError("HigherHRNetRandomAffine(sampling='official') "
                             'does not clip keypoints (clip_border=True)')
        if self.scale_type not in ('short', 'long'):
            raise ValueError("HigherHRNetRandomAffine: scale_type must be "
                             f"'short' or 'long', got {self.scale_type!r}")

    @staticmethod
    def _happens(prob: float) -> bool:
        return prob >= 1 or (prob > 0 and np.random.rand() < prob)

    @cache_randomness
    def _draw_official(self, image_side: float) -> AffineDraw:
        """Draw scale, rotation and shift in the official order.

        Args:
            image_side (float): the image side the crop is measured against
                (short or long, by ``scale_type``), original pixels.
        """
        scale_factor = 1.0
        if self._happens(self.scale_prob):
            low, high = self.scale_factor
            scale_factor = np.random.random() * (high - low) + low
        rotation = 0.0
        if self._happens(self.rotate_prob):
            rotation = (np.random.random() * 2 - 1) * self.rotate_factor
        shift = (0, 0)
        scale = image_side / _PIXELS_PER_SCALE_UNIT * scale_factor
        bound = self.shift_factor * _PIXELS_PER_SCALE_UNIT * scale
        low, high = int(-bound), int(bound)  # np.random.randint truncates
        if high > low and self._happens(self.shift_prob):
            shift = (np.random.randint(low, high),
                     np.random.randint(low, high))
        return AffineDraw(scale_factor, rotation, shift)

    def _official_warp(self, img_shape: Tuple[int, int]) -> np.ndarray:
        """(2, 3) image -> input matrix of one official draw."""
        img_h, img_w = img_shape[:2]
        pick = min if self.scale_type == 'short' else max
        image_side = pick(img_h, img_w)
        draw = self._draw_official(image_side)
        center = np.array([img_w / 2, img_h / 2]) + draw.shift
        return official_warp_matrix(center, image_side * draw.scale_factor,
                                    draw.rotation, self.input_size[0])

    def transform(self, results: Dict) -> Dict:
        if self.sampling == 'mmpose':
            return super().transform(results)
        warp_mat = self._official_warp(results['img_shape'])
        w, h = self.input_size
        results['img'] = self._transform(results['img'], warp_mat,
                                         (int(w), int(h)))
        if 'keypoints' in results:
            keypoints = np.asarray(results['keypoints'][..., :2], np.float64)
            homogeneous = np.concatenate(
                [keypoints, np.ones_like(keypoints[..., :1])], axis=-1)
            results['keypoints'] = homogeneous @ warp_mat.T
        self._warp_boxes(results, warp_mat)
        results['input_size'] = self.input_size
        results['warp_mat'] = warp_mat
        return results

    def _warp_boxes(self, results: Dict, warp_mat: np.ndarray):
        """Boxes and areas follow the warp as in ``BottomupRandomAffine``."""
        if 'bbox' in results:
            corners = cv2.transform(bbox_xyxy2corner(results['bbox']),
                                    warp_mat)
            results['bbox'] = corners if self.bbox_keep_corner else \
                bbox_corner2xyxy(corners)
        if 'area' in results:
            results['area'] = results['area'] * np.linalg.det(
                warp_mat[:, :2])

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, '
                f'sampling={self.sampling!r}, '
                f'shift_factor={self.shift_factor}, '
                f'scale_factor={self.scale_factor}, '
                f'scale_type={self.scale_type!r}, '
                f'rotate_factor={self.rotate_factor})')
