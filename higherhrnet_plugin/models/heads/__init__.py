from .higherhrnet_head import HigherHRNetHead

__all__ = ['HigherHRNetHead']
