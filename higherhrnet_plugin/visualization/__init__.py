"""Figures of training runs. Not imported by ``import higherhrnet_plugin``
(it needs matplotlib)."""
from .learning_curve import plot_learning_curve, read_scalars

__all__ = ['plot_learning_curve', 'read_scalars']
