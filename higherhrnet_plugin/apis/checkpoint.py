"""Reading checkpoint files safely.

:func:`load_checkpoint_file` is the one function through which the plugin
reads ``.pth`` files: the converter,
:func:`~higherhrnet_plugin.apis.init_model` and every tool use it, and MMEngine's local checkpoint loader is replaced by
it where that one would unpickle arbitrary objects (see
:mod:`higherhrnet_plugin._compat`, fix 4) — so ``--resume``,
``mim test --checkpoint`` and ``mmpose.apis.init_model`` use it too.

It loads weights only: tensors, plain containers and numbers, plus the few
types MMEngine's own checkpoints hold
(:func:`~higherhrnet_plugin._compat.mmengine_checkpoint_globals`: numeric
numpy arrays and scalars, ``HistoryBuffer``). A pickle that asks for anything
else is refused before that object is created, with a message naming the
file and the object. Two implementations, chosen by what torch offers:

- torch's own weights-only unpickler with the allowlist
  (``torch.serialization.safe_globals``, torch >= 2.6);
- else (torch 2.1) a restricted :class:`pickle.Unpickler` whose
  ``find_class`` only returns allowlisted objects, passed to ``torch.load``
  as its ``pickle_module``.
"""
import _compat_pickle
import os
import os.path as osp
import pickle
import re
import types
from typing import Dict, Optional, Sequence

import torch

from .. import _compat

__all__ = ['CheckpointError', 'CheckpointNotFoundError',
           'RefusedCheckpointError', 'load_checkpoint_file']


class CheckpointError(ValueError):
    """A checkpoint cannot be read, converted or loaded into the model.

    Args:
        message (str): What went wrong; names the offending keys.
        source (str, optional): The checkpoint file. When given it is
            prepended to the message.
        keys (Sequence[str]): All offending keys, if any.
    """

    def __init__(self,
                 message: str,
                 source: Optional[str] = None,
                 keys: Sequence[str] = ()):
        self.source = source
        self.keys = list(keys)
        self.reason = message
        super().__init__(f'{source}: {message}' if source else message)


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist (also a FileNotFoundError, which
    MMEngine's callers expect)."""


class RefusedCheckpointError(CheckpointError):
    """The checkpoint's pickle asks for an object a weights-only load
    refuses."""


#: How PyTorch checkpoints start: a zip archive (torch >= 1.6) or a pickle
#: (the legacy format).
_CHECKPOINT_MAGIC = (b'PK\x03\x04', b'\x80')


def _torch_globals() -> Dict[str, object]:
    """What plain state dicts need (the part of torch's own weights-only
    allowlist that tensors, parameters and optimizer states use)."""
    utils = torch._utils
    names = ('_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_parameter',
             '_rebuild_parameter_with_state')
    allowed = {
        f'torch._utils.{name}': getattr(utils, name)
        for name in names if hasattr(utils, name)
    }
    import codecs
    import collections
    allowed.update({
        'collections.OrderedDict': collections.OrderedDict,
        'collections.Counter': collections.Counter,
        'torch.Size': torch.Size,
        'torch.device': torch.device,
        '_codecs.encode': codecs.encode,
        'builtins.set': set,
        'builtins.bytearray': bytearray,
        'builtins.complex': complex,
    })
    allowed.update({
        f'torch.{name}': value
        for name, value in vars(torch).items()
        if isinstance(value, torch.dtype)
    })
    return allowed


def _restricted_pickle_module() -> types.ModuleType:
    """A ``pickle_module`` for ``torch.load`` that refuses every global not
    in the allowlist (torch's storages are resolved by ``torch.load``)."""
    allowed = _torch_globals()
    allowed.update({name: obj for obj, name in
                    _compat.mmengine_checkpoint_globals()})

    class RestrictedUnpickler(pickle.Unpickler):

        def find_class(self, module, name):
            # protocol 2 pickles use Python 2 module names (__builtin__)
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            full_name = f'{module}.{name}'
            if full_name not in allowed:
                raise _compat.RefusedGlobal(full_name)
            return allowed[full_name]

    module = types.ModuleType('restricted_pickle')
    module.Unpickler = RestrictedUnpickler
    module.load = lambda file, **kwargs: RestrictedUnpickler(
        file, **kwargs).load()
    module.__doc__ = 'pickle, restricted to the weights-only allowlist'
    return module


def _weights_only_load(path: str, map_location):
    if _compat.torch_accepts_mmengine_allowlist():
        with _compat.mmengine_allowlist():
            return torch.load(path, map_location=map_location,
                              weights_only=True)
    return torch.load(path, map_location=map_location, weights_only=False,
                      pickle_module=_restricted_pickle_module())


def _refused_global(err: BaseException) -> Optional[str]:
    """The global a weights-only unpickler refused, if that is the error."""
    if isinstance(err, _compat.RefusedGlobal):
        return err.name
    for pattern in (r'refused global (.+?)\.?(?:\n|$)',
                    r'GLOBAL (\S+) was not an allowed global',
                    r'unsupported GLOBAL (\S+) whose module',
                    r'unrecognized function (\S+)'):
        match = re.search(pattern, str(err))
        if match:
            return match.group(1)
    return None


def foreign_format(source: str) -> Optional[str]:
    """Say so if ``source`` does not start like a PyTorch checkpoint."""
    try:
        with open(source, 'rb') as f:
            head = f.read(8)
    except OSError:
        return None
    if head and not head.startswith(_CHECKPOINT_MAGIC):
        return ('not a PyTorch checkpoint: the file is neither a zip archive '
                f'nor a pickle (it starts with {head!r})')
    return None


def describe_load_error(err: BaseException, source: str) -> str:
    """A one-line explanation of a ``torch.load`` failure."""
    # First sentence of the first line; torch's zip reader errors go on
    # with advice about internal details.
    first_line = (str(err).strip().splitlines() or [''])[0]
    first_line = first_line.split('. ')[0].rstrip('.')
    if len(first_line) > 160:
        first_line = first_line[:157] + '...'
    detail = f'{type(err).__name__}: {first_line}' if first_line else \
        type(err).__name__
    if isinstance(err, OSError) and not isinstance(err, EOFError):
        return f'cannot read the file ({detail})'
    foreign = foreign_format(source)
    if foreign:
        return f'{foreign}; torch.load: {detail}'
    return f'the checkpoint file is truncated or corrupt ({detail})'


def check_file(source: str) -> None:
    """Raise :class:`CheckpointError` unless ``source`` is a non-empty
    file."""
    if not osp.exists(source):
        raise CheckpointNotFoundError('no such file', source)
    if osp.isdir(source):
        raise CheckpointError('is a directory, expected a checkpoint file',
                              source)
    if osp.getsize(source) == 0:
        raise CheckpointError('the file is empty (0 bytes), not a checkpoint',
                              source)


def load_checkpoint_file(filename, map_location=None):
    """Load a checkpoint file, weights only (see the module docstring).

    The signature is that of MMEngine's local checkpoint loaders, so it can
    be registered with ``CheckpointLoader.register_scheme``.

    Args:
        filename (str | PathLike): The checkpoint file (``~`` is expanded).
        map_location: As for :func:`torch.load`.

    Returns:
        object: What the file holds, e.g. ``{'state_dict': ..., 'meta':
        ...}``.

    Raises:
        CheckpointError: If the file is missing (also a FileNotFoundError),
            empty, truncated, corrupt or not a checkpoint, or if its pickle
            asks for a Python object outside the allowlist; the message is
            one line and names the file (and the refused object).
    """
    source = osp.expanduser(os.fspath(filename))
    check_file(source)
    try:
        return _weights_only_load(source, map_location)
    except Exception as err:  # noqa: BLE001  (every cause is reported)
        refused = _refused_global(err)
        if refused is not None:
            raise RefusedCheckpointError(
                f'refused to unpickle {refused}: a weights-only load accepts '
                'tensors, plain containers, numbers and the numpy / MMEngine '
                'types of MMEngine checkpoints, nothing that could run code '
                '(see docs/converting_checkpoints.md)', source) from None
        raise CheckpointError(describe_load_error(err, source),
                              source) from None
