"""Helpers shared by the test suite, the benchmarks and the tools, in the
spirit of :mod:`mmpose.testing`: the location of the reference fixtures and
data (``../shared`` beside the repository), ...

Nothing here is imported by ``import higherhrnet_plugin``.
"""
from .shared import SHARED_ROOT, shared_path

__all__ = ['SHARED_ROOT', 'shared_path']
