from .higherhrnet_resize import HigherHRNetResize

__all__ = ['HigherHRNetResize']
