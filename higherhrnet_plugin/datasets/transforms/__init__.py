from .higherhrnet_resize import HigherHRNetResize
from .multi_scale_packing import PackMultiScalePoseInputs

__all__ = ['HigherHRNetResize', 'PackMultiScalePoseInputs']
