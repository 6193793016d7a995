"""Make MMPose 1.3.2 work on the stacks this plugin supports.

This is the ONLY place the plugin works around its host stack. Each fix is
decided by probing what the environment lacks (never by version strings or
by reading source code) and touches only what it must:

1. **torchvision without its compiled ops.** The registry's torchvision wheel
   is built against CUDA torch; its ``_C`` extension cannot load against a
   CPU torch build, and ``import torchvision`` then fails inside
   ``torchvision._meta_registrations``, which registers fake kernels for the
   ``torchvision::nms`` / ``qnms`` operators ``_C`` would define. Where
   ``_C`` does not load, we define those two schemas (no kernels): torchvision
   imports, and its compiled ops stay unavailable and say so if used.

2. **mmcv-lite has no ``mmcv._ext``.** ``import mmpose.models`` imports
   ``mmcv.ops`` (for EDPose), whose modules load compiled functions from
   ``mmcv._ext`` at import time. Where ``mmcv._ext`` does not exist we
   install a placeholder whose functions raise a clear error *when called*.
   MMEngine's ``mmcv_full_available()`` still says False.

3. **MMEngine's checkpoints and torch's weights-only unpickler.** MMEngine's
   checkpoints hold numpy arrays (dataset metainfo) and ``HistoryBuffer``
   objects (``message_hub``), which ``torch.load(weights_only=True)`` (the
   default since torch 2.6) refuses. Where torch refuses them and accepts an
   allowlist, we add :func:`mmengine_checkpoint_globals` to it, so every
   ``torch.load`` (MMEngine's, MMPose's ``publish_model.py``, yours) reads
   them and *still* refuses every other type: weights-only loading stays on.

4. **MMEngine's local checkpoint loader.** Where it unpickles arbitrary
   objects (a canary pickle runs; torch < 2.6 loads with
   ``weights_only=False``) or depends on an allowlist torch lacked (fix 3),
   we register the plugin's
   :func:`~higherhrnet_plugin.apis.load_checkpoint_file` for local files:
   weights-only with the same allowlist, and one-line errors that name the
   file (and the refused type). ``--resume``, ``mim test --checkpoint`` and
   ``init_model`` use it.

5. **Distributed training without CUDA.** Where ``torch.cuda`` is unusable
   (a CPU-only build, or a CUDA build on a machine without GPUs), MMEngine's
   pytorch launcher (``torchrun ... --launcher pytorch``) fails in
   ``torch.cuda.set_device`` and its DDP wrapper is given
   ``device_ids=[LOCAL_RANK]``, which DDP rejects for CPU modules. We create
   the process group without CUDA (``nccl`` becomes ``gloo``, with a
   warning) and drop ``device_ids`` for modules that live on the CPU.

:func:`apply` (called when :mod:`higherhrnet_plugin` is imported) applies all
of them; the startup hook (:mod:`higherhrnet_plugin_startup`) applies 1-3 in
processes that never import the plugin (e.g. MMPose's demo scripts), on the
first import of the module each one concerns. Everything is idempotent.

This module imports nothing from the package at import time, so that the
startup hook can load it without importing MMPose.
"""
import glob
import importlib.machinery
import importlib.util
import inspect
import io
import os
import pickle
import sys
import tempfile
import types
from typing import Callable, Dict, List, Tuple

_LITE_MESSAGE = ('mmcv.ops.{name} needs the compiled ops of full mmcv; this '
                 'environment has mmcv-lite. Install mmcv==2.1.0 built with '
                 'MMCV_WITH_OPS=1 (see docs/install.md).')

#: The fixes decided so far: name -> whether it changed anything.
_state: Dict[str, bool] = {}
#: Cached probe results.
_probes: Dict[str, bool] = {}


def _once(name: str, fix: Callable[[], bool]) -> None:
    """Run ``fix`` (which returns whether it changed anything) once, also
    when its probe re-enters (``find_spec`` calls reach the startup hook)."""
    if name not in _state:
        _state[name] = False
        _state[name] = bool(fix())


# ------------------------------------------------------------ 1. torchvision


def _torchvision_ops_missing() -> bool:
    """True if torchvision is installed but its compiled ops cannot load.

    Loads torchvision's ``_C`` library the way torchvision itself does; where
    that works, torchvision's own registrations are used unchanged.
    """
    import torch
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
    import torch
    global _TORCHVISION_LIB
    lib = torch.library.Library('torchvision', 'DEF')
    for name in ('nms', 'qnms'):
        lib.define(
            f'{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    _TORCHVISION_LIB = lib  # the registration lives as long as this object


def fix_torchvision() -> None:
    """Fix 1 (before torchvision is imported)."""

    def fix():
        if _torchvision_ops_missing():
            _define_torchvision_nms_schemas()
            return True
        return False

    _once('torchvision', fix)


# ------------------------------------------------------------- 2. mmcv-lite


def _mmcv_ext_missing() -> bool:
    """True if mmcv is installed without ``mmcv._ext``; looks in mmcv's
    folder without importing mmcv (the startup hook asks before it is)."""
    if 'mmcv._ext' in sys.modules:
        return False
    spec = importlib.util.find_spec('mmcv')
    if spec is None or not spec.submodule_search_locations:
        return False
    return importlib.machinery.PathFinder.find_spec(
        'mmcv._ext', list(spec.submodule_search_locations)) is None


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


def fix_mmcv() -> None:
    """Fix 2 (any time before ``mmcv.ops`` is imported)."""

    def fix():
        if _mmcv_ext_missing():
            _install_mmcv_ext_placeholder()
            return True
        return False

    _once('mmcv', fix)


# ------------------------------------------ 3. the types of MMEngine's files

#: numpy dtypes MMEngine's checkpoints hold (bool, integers, floats): no
#: object, structured or sub-array dtypes, which could carry other objects.
_NUMERIC_DTYPE_KINDS = 'biuf'
_NUMERIC_DTYPE_CODES = '?bhilqBHILQefd'


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a Python object outside the allowlist."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f'refused global {name}')


def _numeric_dtype(*args):
    """``numpy.dtype(...)`` for numeric dtypes only (what pickles of numeric
    numpy arrays and scalars call to rebuild their dtype)."""
    import numpy as np
    dtype = np.dtype(*args)
    if (dtype.kind not in _NUMERIC_DTYPE_KINDS or dtype.fields is not None
            or dtype.subdtype is not None):
        raise RefusedGlobal(f'numpy.dtype({dtype.str!r})')
    return dtype


def _class_function(owner, name: str):
    """``getattr(owner, name)`` for one case only: a public function defined
    on an allowlisted class, which is how a pickle refers to a method such as
    ``HistoryBuffer.mean`` (``HistoryBuffer`` pickles its statistics
    methods). It returns the function; nothing is called."""
    value = vars(owner).get(name) if isinstance(owner, type) else None
    if (owner not in _FUNCTION_OWNERS or name.startswith('_')
            or not inspect.isfunction(value)):
        raise RefusedGlobal(f'getattr({getattr(owner, "__name__", owner)}, '
                            f'{name!r})')
    return value


_FUNCTION_OWNERS: List[type] = []


def mmengine_checkpoint_globals() -> List[Tuple[object, str]]:
    """The Python objects MMEngine's checkpoints need besides tensors and
    plain containers, as ``(object, name in the pickle)`` pairs.

    Found by saving real checkpoints with ``mim train`` (``meta``,
    ``message_hub``, ``optimizer``, ``param_schedulers``):

    - numpy arrays and scalars (dataset metainfo, ``HistoryBuffer`` data):
      ``_reconstruct``, ``ndarray``, ``scalar``, and ``numpy.dtype``
      restricted to numeric dtypes (plus their dtype classes, which torch's
      unpickler must know to restore a dtype's state);
    - ``bytes``: protocol 2 pickles empty bytes (the data of an empty
      array, e.g. a ``HistoryBuffer`` nothing was logged to) as ``bytes()``;
    - ``mmengine.logging.history_buffer.HistoryBuffer`` (``message_hub``),
      and ``getattr`` restricted to its public functions (its pickled
      ``statistics_methods``).

    Each entry builds data; none can run code or reach other modules.
    """
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    if HistoryBuffer not in _FUNCTION_OWNERS:
        _FUNCTION_OWNERS.append(HistoryBuffer)
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    entries = [(np.ndarray, 'numpy.ndarray'), (_numeric_dtype, 'numpy.dtype'),
               (bytes, 'builtins.bytes'),
               (HistoryBuffer,
                'mmengine.logging.history_buffer.HistoryBuffer'),
               (_class_function, 'builtins.getattr')]
    # numpy 1 pickles name numpy.core, numpy 2 numpy._core
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries += [(reconstruct, f'{module}._reconstruct'),
                    (scalar, f'{module}.scalar')]
    for code in _NUMERIC_DTYPE_CODES:
        cls = type(np.dtype(code))
        entries.append((cls, f'numpy.dtypes.{cls.__name__}'))
    return entries


def _sample_mmengine_checkpoint() -> dict:
    """A small object with every kind of content MMEngine's checkpoints
    have besides tensors."""
    import numpy as np
    import torch
    from mmengine.logging.history_buffer import HistoryBuffer
    return dict(
        meta=dict(sigmas=np.ones(2, np.float32), score=np.float64(0.5)),
        message_hub=dict(log_scalars=dict(loss=HistoryBuffer([1.0], [1]),
                                          lr=HistoryBuffer())),
        state_dict=dict(w=torch.ones(1)))


def mmengine_allowlist():
    """``torch.serialization.safe_globals`` with the entries of
    :func:`mmengine_checkpoint_globals` torch does not allow yet (leaving the
    context removes its entries, also from torch's global allowlist)."""
    import torch
    allowed = torch.serialization.get_safe_globals()
    return torch.serialization.safe_globals(
        [entry for entry in mmengine_checkpoint_globals()
         if entry not in allowed])


def torch_accepts_mmengine_allowlist() -> bool:
    """Whether torch's own weights-only unpickler can read MMEngine's
    checkpoints given :func:`mmengine_checkpoint_globals` (it needs
    ``torch.serialization.safe_globals`` and named allowlist entries).
    Cached."""
    if 'torch_allowlist_works' not in _probes:
        import torch
        works = False
        if hasattr(torch.serialization, 'safe_globals'):
            buffer = io.BytesIO()
            torch.save(_sample_mmengine_checkpoint(), buffer)
            buffer.seek(0)
            try:
                with mmengine_allowlist():
                    torch.load(buffer, map_location='cpu', weights_only=True)
                works = True
            except Exception:  # noqa: BLE001  (an older allowlist API)
                works = False
        _probes['torch_allowlist_works'] = works
    return _probes['torch_allowlist_works']


def _torch_refuses_mmengine_checkpoints() -> bool:
    import torch
    buffer = io.BytesIO()
    torch.save(_sample_mmengine_checkpoint(), buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, map_location='cpu', weights_only=True)
        return False
    except pickle.UnpicklingError:
        return True


def fix_torch_allowlist() -> None:
    """Fix 3 (once torch and MMEngine's logging are imported)."""

    def fix():
        if not _torch_refuses_mmengine_checkpoints():
            return False
        _probes['torch_refused_mmengine_checkpoints'] = True
        if not torch_accepts_mmengine_allowlist():
            return False  # torch < 2.5: fix 4 reads them with its own
        import torch
        torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
        return True

    _once('torch_allowlist', fix)


# ------------------------------------------------ 4. MMEngine's local loader

_canary = {'fired': False}


def _fire_canary():
    """Called only by unpickling :data:`_CANARY_PICKLE`: proof that a loader
    runs what a pickle asks for."""
    _canary['fired'] = True


class _Canary:

    def __reduce__(self):
        return _fire_canary, ()


def _mmengine_loader_is_unsafe_or_fails() -> bool:
    """Probe MMEngine's local loader with a canary pickle (a loader that
    runs it would run anything) and with an MMEngine-style checkpoint."""
    import torch
    from mmengine.runner.checkpoint import load_from_local
    with tempfile.TemporaryDirectory() as folder:
        canary = os.path.join(folder, 'canary.pth')
        with open(canary, 'wb') as f:
            pickle.dump(_Canary(), f, protocol=2)
        _canary['fired'] = False
        try:
            load_from_local(canary, map_location='cpu')
        except Exception:  # noqa: BLE001  (refusing it is the safe outcome)
            pass
        if _canary['fired']:
            return True
        checkpoint = os.path.join(folder, 'checkpoint.pth')
        torch.save(_sample_mmengine_checkpoint(), checkpoint)
        try:
            load_from_local(checkpoint, map_location='cpu')
        except Exception:  # noqa: BLE001
            return True
    # it reads MMEngine's files only thanks to fix 3, and would report a
    # refusal with torch's advice to unpickle fully: use ours
    return _probes.get('torch_refused_mmengine_checkpoints', False)


def _register_safe_local_loader() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader

    from .apis.checkpoint import load_checkpoint_file

    def load_from_local(filename, map_location):
        # MMEngine logs "Loads checkpoint by local backend" from this name
        return load_checkpoint_file(filename, map_location)

    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)


def fix_mmengine_loader() -> None:
    """Fix 4 (when the plugin is imported)."""

    def fix():
        if importlib.util.find_spec('mmengine') is None:
            return False
        if not _mmengine_loader_is_unsafe_or_fails():
            return False
        _register_safe_local_loader()
        return True

    _once('mmengine_loader', fix)


# --------------------------------------------------- 5. DDP without CUDA


def _cuda_unusable() -> bool:
    import torch
    return not torch.cuda.is_available()


def _init_dist_pytorch_without_cuda(backend, init_backend='torch',
                                    **kwargs) -> None:
    """MMEngine's pytorch launcher without the CUDA device selection."""
    import torch.distributed as dist
    from mmengine.logging import print_log
    if init_backend != 'torch':
        raise RuntimeError(f'init_backend={init_backend!r} needs CUDA, which '
                           'is not usable here')
    if backend == 'nccl':
        print_log('nccl needs CUDA, which is not usable here; using the gloo '
                  'backend', logger='current', level=30)
        backend = 'gloo'
    dist.init_process_group(backend=backend, **kwargs)


def _without_device_ids_for_cpu_modules(init):
    """Wrap ``MMDistributedDataParallel.__init__``: MMEngine's runner passes
    ``device_ids=[LOCAL_RANK]``, which DDP accepts for GPU modules only."""

    def __init__(self, module, *args, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu:
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        init(self, module, *args, **kwargs)

    __init__.__wrapped__ = init
    return __init__


def fix_distributed_without_cuda() -> None:
    """Fix 5 (when the plugin is imported)."""

    def fix():
        if importlib.util.find_spec('mmengine') is None or not \
                _cuda_unusable():
            return False
        from mmengine.dist import utils as dist_utils
        from mmengine.model.wrappers import MMDistributedDataParallel
        dist_utils._init_dist_pytorch = _init_dist_pytorch_without_cuda
        MMDistributedDataParallel.__init__ = \
            _without_device_ids_for_cpu_modules(
                MMDistributedDataParallel.__init__)
        return True

    _once('distributed', fix)


# ----------------------------------------------------------------- entry


def applied() -> Dict[str, bool]:
    """The fixes decided so far: name -> whether it changed anything."""
    return dict(_state)


def apply() -> None:
    """Apply the workarounds that this environment needs (idempotent)."""
    fix_torchvision()
    fix_mmcv()
    if importlib.util.find_spec('mmengine') is not None:
        # the order matters: fix 4 asks whether fix 3 was needed
        fix_torch_allowlist()
        fix_mmengine_loader()
        fix_distributed_without_cuda()
