"""Helpers shared by the test suite, the benchmarks and the tools, in the
spirit of :mod:`mmpose.testing`: the location of the reference fixtures and
data (``../shared`` beside the repository) and a network wrapper that makes
batched inference testable exactly.

Nothing here is imported by ``import higherhrnet_plugin``.
"""
from .per_image_network import PerImageNetwork
from .shared import SHARED_ROOT, shared_path

__all__ = ['PerImageNetwork', 'SHARED_ROOT', 'shared_path']
