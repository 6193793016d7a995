from .heads import HigherHRNetHead
from .losses import HigherHRNetLoss, PullPushTagLoss

__all__ = ['HigherHRNetHead', 'HigherHRNetLoss', 'PullPushTagLoss']
