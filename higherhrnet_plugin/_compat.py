"""Make MMPose 1.3.2 work on a CPU-only PyTorch 2.13 build.

This is the ONLY place the plugin works around its host stack. The fixes are
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

3. **MMEngine checkpoints under torch >= 2.6.** torch 2.6 made
   ``torch.load(weights_only=True)`` the default. MMEngine 0.10.7's local
   checkpoint loader does not pass ``weights_only``, and the checkpoints it
   writes hold numpy arrays and MMEngine objects (``meta``, ``message_hub``)
   that the weights-only unpickler rejects, so ``--resume``, ``mim test
   --checkpoint`` and ``init_model`` fail on MMPose's own checkpoints. We
   re-register MMEngine's local loader with ``weights_only=False``, the
   behaviour MMEngine was written for: as with any MMPose checkpoint, load
   only files you trust. (The plugin's checkpoint converter reads foreign
   files with ``weights_only=True``.) Skipped where MMEngine sets
   ``weights_only`` itself or torch is older.

4. **Distributed training on a CPU-only torch.** MMEngine's pytorch launcher
   (``torchrun ... --launcher pytorch``) calls ``torch.cuda.set_device``
   before creating the process group, which a CPU-only torch build cannot
   do. Where torch has no CUDA support we create the process group without
   it (gloo; a requested ``nccl`` becomes ``gloo`` with a warning). Builds
   with CUDA keep MMEngine's launcher unchanged.

Call :func:`apply` again safely; it is idempotent.
"""
import glob
import importlib.machinery
import importlib.util
import inspect
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


def _mmengine_loader_rejects_own_checkpoints() -> bool:
    if importlib.util.find_spec('mmengine') is None:
        return False
    major, minor = (int(v) for v in torch.__version__.split('.')[:2])
    if (major, minor) < (2, 6):
        return False
    from mmengine.runner import checkpoint
    return 'weights_only' not in inspect.getsource(checkpoint.load_from_local)


def _load_from_local_trusted(filename, map_location):
    """MMEngine's local checkpoint loader, with torch < 2.6 semantics."""
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if os.path.getsize(filename) == 0:
        raise RuntimeError(
            f'{filename}: the checkpoint file is empty (0 bytes)')
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    except Exception as err:
        # torch names neither the file nor the likely cause (e.g. "Ran out
        # of input", "PytorchStreamReader failed reading zip archive")
        first_line = (str(err).strip().splitlines() or [''])[0]
        first_line = first_line.split('. ')[0]
        raise RuntimeError(
            f'{filename}: cannot load the checkpoint, the file is probably '
            f'truncated or corrupt ({type(err).__name__}: {first_line})'
        ) from err


def _register_trusted_local_loader() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_from_local_trusted, force=True)


def _torch_without_cuda() -> bool:
    return torch.version.cuda is None and not torch.cuda.is_available()


def _init_dist_pytorch_cpu(backend, init_backend='torch', **kwargs) -> None:
    """MMEngine's pytorch launcher without the CUDA device selection."""
    import torch.distributed as dist
    from mmengine.logging import print_log
    if init_backend != 'torch':
        raise RuntimeError(f'init_backend={init_backend!r} needs CUDA; this '
                           'torch build is CPU-only')
    if backend == 'nccl':
        print_log('nccl needs CUDA; using the gloo backend on this CPU-only '
                  'torch', logger='current', level=30)
        backend = 'gloo'
    dist.init_process_group(backend=backend, **kwargs)


def _register_cpu_dist_launcher() -> None:
    from mmengine.dist import utils as dist_utils
    dist_utils._init_dist_pytorch = _init_dist_pytorch_cpu


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
    if _mmengine_loader_rejects_own_checkpoints():
        _register_trusted_local_loader()
    if importlib.util.find_spec('mmengine') and _torch_without_cuda():
        _register_cpu_dist_launcher()
    _applied = True
