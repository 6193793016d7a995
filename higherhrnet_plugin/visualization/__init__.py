from .multi_resolution_visualizer import MultiResolutionPoseVisualizer

__all__ = ['MultiResolutionPoseVisualizer']
