from .ae_loss import PullPushTagLoss
from .multi_resolution_loss import HigherHRNetLoss

__all__ = ['HigherHRNetLoss', 'PullPushTagLoss']
