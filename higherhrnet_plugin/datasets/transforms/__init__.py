from .higherhrnet_random_affine import (AffineDraw, HigherHRNetRandomAffine,
                                        official_warp_matrix)
from .higherhrnet_resize import HigherHRNetResize
from .multi_scale_packing import PackMultiScalePoseInputs
from .robust_loading import (ImageLoadError, LoadImageOrReport,
                             normalize_image, read_image)

__all__ = [
    'AffineDraw', 'HigherHRNetRandomAffine', 'HigherHRNetResize',
    'ImageLoadError', 'LoadImageOrReport', 'PackMultiScalePoseInputs',
    'normalize_image', 'official_warp_matrix', 'read_image'
]
