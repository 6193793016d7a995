"""Startup hook of higherhrnet-plugin: MMPose's own scripts work unchanged.

MMPose's scripts (``demo/bottomup_demo.py``, ``demo/inferencer_demo.py``,
``tools/analysis_tools/get_flops.py``, ...) import ``mmpose.apis`` before any
config could import the plugin, so on the stack the README installs
(mmcv-lite, a CPU torch) they would stop at ``No module named 'mmcv._ext'``.
``pip install`` of the plugin puts ``higherhrnet_plugin_startup.pth`` into
site-packages; Python runs its one line at startup, which imports this
module. It only installs an import hook (no torch, mmcv or MMPose import):
processes that never import those pay nothing. The hook applies the
environment fixes of :mod:`higherhrnet_plugin._compat` that MMPose needs
before the plugin can be imported, each on the first import of the module it
concerns and each only where its probe finds the environment lacking:

========================== ============ =====================================
first import of            when         fix
========================== ============ =====================================
``torchvision``            before       1. its operator schemas (CPU torch)
``mmcv``                   before       2. placeholder ``mmcv._ext`` (lite)
``torch`` + ``mmengine.`` after both    3. MMEngine's checkpoint types in
``logging``                             torch's weights-only allowlist
========================== ============ =====================================

None of them lowers safety: fix 3 extends what a weights-only load accepts
by data types only. With full mmcv on torch 2.1 every probe finds nothing to
do. Fixes 4 and 5 (MMEngine's loader, DDP without CUDA) stay with the
plugin's import, which every config triggers through ``custom_imports``.
Set ``HIGHERHRNET_PLUGIN_NO_STARTUP_HOOK=1`` to disable the hook.
"""
import importlib.util
import os
import sys
import warnings

_COMPAT = 'higherhrnet_plugin._compat'


def _compat():
    """``higherhrnet_plugin._compat``, loaded without running the package's
    ``__init__`` (which imports MMPose); the package later finds this same
    module in ``sys.modules``."""
    module = sys.modules.get(_COMPAT)
    if module is None:
        package = importlib.util.find_spec('higherhrnet_plugin')
        path = os.path.join(os.path.dirname(package.origin), '_compat.py')
        spec = importlib.util.spec_from_file_location(_COMPAT, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_COMPAT] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[_COMPAT]
            raise
    return module


def _run(fix_name: str) -> None:
    try:
        getattr(_compat(), fix_name)()
    except Exception as err:  # noqa: BLE001  (never break the import)
        warnings.warn(f'higherhrnet_plugin_startup: {fix_name} failed '
                      f'({type(err).__name__}: {err}); import '
                      'higherhrnet_plugin first to apply it', stacklevel=3)


def _allowlist_once_both_imported() -> None:
    if 'torch' in sys.modules and 'mmengine.logging' in sys.modules:
        _run('fix_torch_allowlist')


class _AfterExec:
    """Wraps a module's loader to run ``action`` right after the module is
    executed, then gives the module its real loader back."""

    def __init__(self, loader, action):
        self._loader = loader
        self._action = action

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        try:
            self._loader.exec_module(module)
        finally:
            module.__loader__ = self._loader
            if getattr(module, '__spec__', None) is not None:
                module.__spec__.loader = self._loader
        self._action()

    def __getattr__(self, name):
        return getattr(self._loader, name)


#: module -> (before its execution, after it)
_WATCHED = {
    'torchvision': (lambda: _run('fix_torchvision'), None),
    'mmcv': (lambda: _run('fix_mmcv'), None),
    'torch': (None, _allowlist_once_both_imported),
    'mmengine.logging': (None, _allowlist_once_both_imported),
}


class StartupHook:
    """A meta path finder that finds nothing itself: on the first import of
    a watched module it runs that module's fixes (see the module
    docstring)."""

    def __init__(self):
        self._seen = set()

    def find_spec(self, name, path=None, target=None):
        if name not in _WATCHED or name in self._seen:
            return None
        self._seen.add(name)
        before, after = _WATCHED[name]
        if before is not None:
            before()
        if after is None:
            return None  # found by the usual finders
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader,
                                                       'exec_module'):
                    spec.loader = _AfterExec(spec.loader, after)
                return spec
        return None


def install() -> None:
    """Put the hook first on ``sys.meta_path`` (once)."""
    if os.environ.get('HIGHERHRNET_PLUGIN_NO_STARTUP_HOOK'):
        return
    if not any(isinstance(f, StartupHook) for f in sys.meta_path):
        sys.meta_path.insert(0, StartupHook())


install()
