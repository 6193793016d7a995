"""HigherHRNet for MMPose 1.x.

Importing this package registers its modules in MMPose's registries
(``mmpose.registry.MODELS``, ``KEYPOINT_CODECS``, ``TRANSFORMS``), so configs can
load them with ``custom_imports = dict(imports=['higherhrnet_plugin'])``.
"""
from . import _compat

_compat.apply()

from . import (codecs, datasets, models,  # noqa: E402,F401  (registers)
               visualization)

__version__ = '0.1.0'
