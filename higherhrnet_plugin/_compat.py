"""Make MMPose 1.3.2 importable on a CPU-only PyTorch build.

This is the ONLY place the plugin works around its host stack. Both fixes are
applied once, when :mod:`higherhrnet_plugin` is imported (it imports this module
first), and each does nothing where the real component works:

1. **torchvision without its compiled ops.** The registry's torchvision wheel is
   built against CUDA torch; its ``_C`` extension cannot load against the CPU
   torch build. ``import torchvision`` then fails inside
   ``torchvision._meta_registrations``, which registers fake kernels for the
   ``torchvision::nms`` / ``torchvision::qnms`` operators that ``_C`` would have
   defined. MMPose imports torchvision for visualisation and some models. We
   define those two operator schemas (no kernels) so that torchvision imports;
   its compiled ops stay unavailable and torchvision says so if one is used.

2. **mmcv-lite has no ``mmcv._ext``.** ``import mmpose.models`` imports the
   EDPose head, which imports ``mmcv.ops``, whose modules load compiled
   functions from ``mmcv._ext`` at import time. HigherHRNet needs none of them.
   We install a placeholder ``mmcv._ext`` module whose functions raise a clear
   error *when called*, so ``mmcv.ops`` imports and any real use of a compiled
   op still fails loudly. With full mmcv (compiled ops) this is skipped.

Call :func:`apply` again safely; it is idempotent.
"""
import glob
import importlib.machinery
import importlib.util
import os
import sys
import types

import torch

_LITE_MESSAGE = ('mmcv.ops.{name} needs the compiled ops of full mmcv; this '
                 'environment has mmcv-lite. Install mmcv==2.1.0 built with '
                 'MMCV_WITH_OPS=1 (see docs/install.md).')


def _torchvision_ops_missing() -> bool:
    """True if torchvision is installed but its compiled ops cannot load.

    Loads torchvision's ``_C`` library the way torchvision itself does; where
    that works, torchvision's own registrations are used unchanged.
    """
    spec = importlib.util.find_spec('torchvision')
    if spec is None or 'torchvision' in sys.modules:
        return False
    folder = os.path.dirname(spec.origin)
    libs = glob.glob(os.path.join(folder, '_C*.so')) + glob.glob(
        os.path.join(folder, '_C*.pyd'))
    try:
        torch.ops.load_library(libs[0])
        return False
    except (IndexError, OSError):
        return True


_TORCHVISION_LIB = None


def _define_torchvision_nms_schemas() -> None:
    global _TORCHVISION_LIB
    lib = torch.library.Library('torchvision', 'DEF')
    for name in ('nms', 'qnms'):
        lib.define(
            f'{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    _TORCHVISION_LIB = lib  # the registration lives as long as this object


def _mmcv_ext_missing() -> bool:
    return (importlib.util.find_spec('mmcv') is not None
            and 'mmcv._ext' not in sys.modules
            and importlib.util.find_spec('mmcv._ext') is None)


def _install_mmcv_ext_placeholder() -> None:
    module = types.ModuleType('mmcv._ext')
    module.__doc__ = 'Placeholder for mmcv-lite (see higherhrnet_plugin._compat).'
    # A spec without a loader: importable, yet MMEngine's
    # mmcv_full_available() (which asks for the loader) still says False.
    module.__spec__ = importlib.machinery.ModuleSpec('mmcv._ext', None)

    def __getattr__(name):
        if name.startswith('__'):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise RuntimeError(_LITE_MESSAGE.format(name=name))

        unavailable.__name__ = name
        return unavailable

    module.__getattr__ = __getattr__
    sys.modules['mmcv._ext'] = module


_applied = False


def apply() -> None:
    """Apply the workarounds that this environment needs (idempotent)."""
    global _applied
    if _applied:
        return
    if _torchvision_ops_missing():
        _define_torchvision_nms_schemas()
    if _mmcv_ext_missing():
        _install_mmcv_ext_placeholder()
    _applied = True
