from .data_preprocessors import MultiScalePoseDataPreprocessor
from .heads import HigherHRNetHead
from .losses import HigherHRNetLoss, PullPushTagLoss
from .pose_estimators import MultiScaleBottomupPoseEstimator

__all__ = [
    'HigherHRNetHead', 'HigherHRNetLoss', 'MultiScaleBottomupPoseEstimator',
    'MultiScalePoseDataPreprocessor', 'PullPushTagLoss'
]
