from .multi_scale_bottomup import MultiScaleBottomupPoseEstimator

__all__ = ['MultiScaleBottomupPoseEstimator']
