"""Image loading that names bad files, and optionally survives them.

:class:`LoadImageOrReport` is MMPose's ``LoadImage`` with two additions:

- **bad files** (missing, a directory, 0 bytes, truncated, corrupt, not an
  image, unreadable) either raise :class:`ImageLoadError`, a message naming
  the file and the reason (``on_error='raise'``, for training), or are
  reported with a warning through MMEngine's logger and replaced by a blank
  image of the image's size (``on_error='report'``, for evaluation), with
  ``results['load_error']`` set to the reason so that the rest of the
  pipeline and the model can tell;
- **format normalisation**: whatever the decoder or the caller (an array in
  ``results['img']``) provides becomes an (H, W, 3) ``uint8`` image:
  grayscale -> 3 channels, RGBA / gray+alpha -> alpha dropped, 16-bit ->
  8-bit (``>> 8``, as OpenCV's ``IMREAD_COLOR`` does), float -> 8-bit.

With the default ``color_type='color'`` and the ``cv2`` backend, OpenCV
already decodes grayscale, RGBA and 16-bit files to 8-bit BGR; the
normalisation matters for arrays passed in directly (``inference_bottomup``
with an ndarray, video frames), for ``color_type='unchanged'`` /
``'grayscale'`` and for other backends.

:func:`read_image` is the same loading as a function (used by
``tools/demo.py``): it returns the normalised image or raises
:class:`ImageLoadError`.
"""
import logging
import os
import os.path as osp
from typing import Dict, Optional, Tuple

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmengine.logging import print_log

from mmpose.datasets.transforms import LoadImage
from mmpose.registry import TRANSFORMS

__all__ = [
    'ImageLoadError', 'LoadImageOrReport', 'normalize_image', 'read_image'
]

#: How image files start, for telling "truncated" from "not an image".
_SIGNATURES = (
    (b'\xff\xd8\xff', 'JPEG'),
    (b'\x89PNG\r\n\x1a\n', 'PNG'),
    (b'GIF87a', 'GIF'),
    (b'GIF89a', 'GIF'),
    (b'BM', 'BMP'),
    (b'II*\x00', 'TIFF'),
    (b'MM\x00*', 'TIFF'),
)


class ImageLoadError(RuntimeError):
    """An image file cannot be loaded.

    Args:
        path (str): The file.
        reason (str): Why, e.g. ``'no such file'``.
    """

    def __init__(self, path: Optional[str], reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f'cannot load image {path}: {reason}')


def _image_format(data: bytes) -> Optional[str]:
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return 'WebP'
    return None


def _decode_failure_reason(data: bytes) -> str:
    """Explain why bytes that exist did not decode."""
    fmt = _image_format(data)
    if fmt is None:
        return ('not an image file, or the file is corrupt (unrecognised '
                f'data, starts with {data[:8]!r})')
    if fmt == 'JPEG' and b'\xff\xd9' not in data[-4096:]:
        return (f'truncated JPEG ({len(data)} bytes, no end-of-image '
                'marker)')
    if fmt == 'PNG' and b'IEND' not in data[-64:]:
        return f'truncated PNG ({len(data)} bytes, no IEND chunk)'
    return f'corrupt {fmt} data (the decoder could not read it)'


def normalize_image(img: np.ndarray) -> np.ndarray:
    """Bring a decoded image to (H, W, 3) ``uint8``.

    - (H, W) or (H, W, 1): gray -> the value in all three channels;
    - (H, W, 2): gray + alpha -> gray in three channels;
    - (H, W, 4): colour + alpha -> alpha dropped;
    - ``uint16``: ``>> 8`` (OpenCV's ``IMREAD_COLOR`` conversion);
    - float: values in [0, 1] are scaled by 255, others clipped to
      [0, 255]; other integer types and bool are clipped to [0, 255].

    An image that is already (H, W, 3) ``uint8`` is returned unchanged (no
    copy).

    Raises:
        ValueError: if ``img`` is not an image-shaped array (no pixels,
            or a channel count other than 1-4).
    """
    if not isinstance(img, np.ndarray):
        raise ValueError(f'expected an image array, got {type(img).__name__}')
    if img.ndim not in (2, 3) or img.size == 0:
        raise ValueError(f'not an image: array of shape {img.shape}')
    if img.ndim == 3 and img.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f'not an image: {img.shape[2]} channels '
                         f'(shape {img.shape})')

    if img.dtype != np.uint8:
        if img.dtype == np.uint16:
            img = (img >> 8).astype(np.uint8)
        elif np.issubdtype(img.dtype, np.floating):
            finite = np.nan_to_num(img.astype(np.float32), nan=0.0)
            if finite.size and finite.min() >= 0 and finite.max() <= 1:
                finite = finite * 255.0
            img = np.clip(np.rint(finite), 0, 255).astype(np.uint8)
        else:
            img = np.clip(img.astype(np.int64), 0, 255).astype(np.uint8)

    if img.ndim == 2:
        img = img[..., None]
    channels = img.shape[2]
    if channels in (1, 2):
        img = np.repeat(img[..., :1], 3, axis=2)
    elif channels == 4:
        img = img[..., :3]
    return np.ascontiguousarray(img)


def _read_bytes(path: str, backend_args: Optional[dict]) -> bytes:
    """Read a file, turning every failure into an :class:`ImageLoadError`."""
    is_local = backend_args is None and '://' not in path
    if is_local:
        if not osp.lexists(path):
            raise ImageLoadError(path, 'no such file')
        if not osp.exists(path):
            raise ImageLoadError(path, 'broken symbolic link')
        if osp.isdir(path):
            raise ImageLoadError(path, 'is a directory, not an image file')
        if osp.getsize(path) == 0:
            raise ImageLoadError(path, 'the file is empty (0 bytes)')
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise ImageLoadError(path, 'no such file') from None
    except PermissionError:
        raise ImageLoadError(path, 'permission denied') from None
    except IsADirectoryError:
        raise ImageLoadError(path,
                             'is a directory, not an image file') from None
    except OSError as err:
        raise ImageLoadError(
            path, f'cannot read the file ({err.strerror or err})') from None
    if not data:
        raise ImageLoadError(path, 'the file is empty (0 bytes)')
    return data


def read_image(path: str,
               color_type: str = 'color',
               backend: str = 'cv2',
               backend_args: Optional[dict] = None,
               normalize: bool = True) -> np.ndarray:
    """Read and decode an image file; raise :class:`ImageLoadError` naming
    the file and the reason if that fails.

    Args:
        path (str): The file (or a URI MMEngine's file backends handle).
        color_type (str): ``mmcv.imfrombytes`` flag. Defaults to 'color'.
        backend (str): ``mmcv.imfrombytes`` backend. Defaults to 'cv2'.
        backend_args (dict, optional): MMEngine file backend arguments.
        normalize (bool): Apply :func:`normalize_image`. Defaults to True.

    Returns:
        np.ndarray: (H, W, 3) uint8 BGR (with ``normalize``).
    """
    path = os.fspath(path)
    data = _read_bytes(path, backend_args)
    try:
        img = mmcv.imfrombytes(data, flag=color_type, backend=backend)
    except Exception as err:  # pillow & co. raise, cv2 returns None
        first_line = (str(err).strip().splitlines() or [''])[0]
        reason = _decode_failure_reason(data)
        raise ImageLoadError(
            path, f'{reason}; {type(err).__name__}: {first_line}') from None
    if img is None:
        raise ImageLoadError(path, _decode_failure_reason(data))
    if normalize:
        try:
            img = normalize_image(img)
        except ValueError as err:
            raise ImageLoadError(path, str(err)) from None
    return img


def _shape_hint(results: Dict, path: Optional[str]) -> Tuple[Optional[Tuple[
        int, int]], str]:
    """Best guess of the (h, w) of an image that could not be loaded."""
    for key in ('ori_shape', 'img_shape'):
        shape = results.get(key)
        if shape is not None and len(shape) >= 2 and min(shape[:2]) > 0:
            return (int(shape[0]), int(shape[1])), key
    for info in (results, results.get('img_info') or {},
                 results.get('raw_img_info') or {}):
        if isinstance(info, dict) and info.get('height') and info.get(
                'width'):
            return (int(info['height']), int(info['width'])), 'image info'
    if path and '://' not in path and osp.isfile(path):
        try:  # the header may survive when the pixel data does not
            from PIL import Image
            with Image.open(path) as im:
                w, h = im.size
            if w > 0 and h > 0:
                return (int(h), int(w)), 'file header'
        except Exception:
            pass
    # The annotations lie inside the image: their extent is a lower bound.
    extent = np.zeros(2)
    for key in ('bbox', 'keypoints'):
        value = results.get(key)
        if value is None:
            continue
        coords = np.asarray(value, dtype=np.float64).reshape(-1, 2)
        coords = coords[np.isfinite(coords).all(axis=1)]
        if len(coords):
            extent = np.maximum(extent, coords.max(axis=0))
    if extent.min() > 0:
        w, h = np.ceil(extent + 1).astype(int)
        return (int(h), int(w)), 'annotation extent'
    return None, 'default'


@TRANSFORMS.register_module()
class LoadImageOrReport(LoadImage):
    """``LoadImage`` that names bad image files and, for evaluation, reports
    them and goes on with a blank image.

    Required Keys:

        - img_path
        - img (optional)

    Modified Keys:

        - img
        - img_shape
        - ori_shape
        - img_path (optional)

    Added Keys:

        - load_error (only for a bad image with ``on_error='report'``): the
          reason, e.g. ``'truncated JPEG (...)'``

    A bad image in ``'report'`` mode becomes an all-zero image whose size is,
    in order of preference: ``ori_shape`` / ``img_shape`` already in the
    results, ``height`` / ``width`` of the image info, the file header (a
    truncated file often keeps it), the extent of the annotated boxes and
    keypoints, ``blank_shape``. Put ``'load_error'`` in the packing
    transform's ``meta_keys`` so that the model can return no people for it.

    Args:
        on_error (str): ``'raise'`` (an :class:`ImageLoadError` naming the
            file and the reason; use it for training) or ``'report'`` (a
            warning through MMEngine's current logger, a blank image and
            ``results['load_error']``; use it for evaluation / inference).
            Defaults to ``'raise'``.
        normalize (bool): Convert every image to (H, W, 3) uint8 (see
            :func:`normalize_image`). Defaults to True.
        blank_shape (tuple): (h, w) of the blank image when nothing tells
            the real size. Defaults to (64, 64).
        **kwargs: ``LoadImage``'s arguments (``to_float32``, ``color_type``,
            ``imdecode_backend``, ``backend_args``, ...). ``ignore_empty``
            is not supported (use ``on_error``).
    """

    def __init__(self,
                 on_error: str = 'raise',
                 normalize: bool = True,
                 blank_shape: Tuple[int, int] = (64, 64),
                 **kwargs):
        if on_error not in ('raise', 'report'):
            raise ValueError("on_error must be 'raise' or 'report', got "
                             f'{on_error!r}')
        if kwargs.get('ignore_empty'):
            raise ValueError('LoadImageOrReport does not support '
                             "ignore_empty; use on_error='report'")
        if len(blank_shape) != 2 or min(blank_shape) < 1:
            raise ValueError(f'blank_shape must be (h, w) >= 1, got '
                             f'{blank_shape}')
        super().__init__(**kwargs)
        self.on_error = on_error
        self.normalize = normalize
        self.blank_shape = (int(blank_shape[0]), int(blank_shape[1]))

    def _backend_args(self) -> Optional[dict]:
        if self.backend_args is not None:
            return self.backend_args
        return self.file_client_args

    def _load(self, results: Dict) -> np.ndarray:
        if 'img' in results:
            img = results['img']
            if img is None:
                raise ImageLoadError(results.get('img_path'),
                                     'no image (img is None)')
            if self.normalize:
                try:
                    return normalize_image(img)
                except ValueError as err:
                    raise ImageLoadError(results.get('img_path'),
                                         str(err)) from None
            return img
        if results.get('img_path') is None:
            raise ImageLoadError(None, 'no img_path and no img given')
        return read_image(
            results['img_path'],
            color_type=self.color_type,
            backend=self.imdecode_backend,
            backend_args=self._backend_args(),
            normalize=self.normalize)

    def transform(self, results: Dict) -> Dict:
        results.setdefault('img_path', None)
        try:
            img = self._load(results)
        except ImageLoadError as err:
            if self.on_error == 'raise':
                raise
            img = self._blank(results, err)
            results['load_error'] = err.reason
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _blank(self, results: Dict, err: ImageLoadError) -> np.ndarray:
        shape, source = _shape_hint(results, err.path)
        if shape is None:
            shape = self.blank_shape
        h, w = shape
        print_log(
            f'{type(self).__name__}: cannot load image {err.path}: '
            f'{err.reason}. Using a blank {w}x{h} image instead (size from '
            f'{source}), marked with load_error.',
            logger='current',
            level=logging.WARNING)
        return np.zeros((h, w, 3), dtype=np.uint8)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(on_error={self.on_error!r}, '
                f'normalize={self.normalize}, '
                f'blank_shape={self.blank_shape}, '
                f'to_float32={self.to_float32}, '
                f'color_type={self.color_type!r}, '
                f'imdecode_backend={self.imdecode_backend!r}, '
                f'backend_args={self._backend_args()})')
