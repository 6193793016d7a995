"""Visualisation: a visualiser that shows the targets of every output
resolution, and figures of training runs."""
from .learning_curve import plot_learning_curve, read_scalars
from .multi_resolution_visualizer import MultiResolutionPoseVisualizer

__all__ = [
    'MultiResolutionPoseVisualizer', 'plot_learning_curve', 'read_scalars'
]
