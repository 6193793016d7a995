from .higherhrnet_resize import HigherHRNetResize
from .multi_scale_packing import PackMultiScalePoseInputs
from .robust_loading import (ImageLoadError, LoadImageOrReport,
                             normalize_image, read_image)

__all__ = [
    'HigherHRNetResize', 'ImageLoadError', 'LoadImageOrReport',
    'PackMultiScalePoseInputs', 'normalize_image', 'read_image'
]
