"""Convert HigherHRNet checkpoints to the layout of this plugin's MMPose 1.x
model (``BottomupPoseEstimator`` + ``HRNet`` + ``HigherHRNetHead``).

Three source layouts are recognised (see ``docs/converting_checkpoints.md``):

- ``'official'``: the official implementation
  (github.com/HRNet/Higher-HRNet-Human-Pose-Estimation), a plain state dict
  with bare backbone keys (``conv1.*``, ``layer1.*``, ``stage4.*`` ...) and
  bare head keys (``final_layers.*``, ``deconv_layers.*``).
- ``'mmpose0x'``: MMPose 0.x, ``backbone.*`` and ``keypoint_head.*``.
- ``'mmpose1x'``: this plugin, ``backbone.*`` and ``head.*`` (nothing to do
  besides checking the keys).

The module layout of :class:`~higherhrnet_plugin.models.HigherHRNetHead` and
of MMPose's ``HRNet`` follows the official code, so every key maps 1:1: only
the prefix changes (``backbone.`` for the backbone, ``head.`` for the head).

Every failure (unreadable file, checkpoint of another model, unknown,
missing or mis-shaped keys) raises :class:`CheckpointConversionError`, whose
message names the source file and the offending keys.

Example:
    >>> from higherhrnet_plugin.checkpoint_conversion import (
    ...     convert_checkpoint, save_converted_checkpoint)
    >>> result = convert_checkpoint('pose_higher_hrnet_w32_512.pth',
    ...                             config='configs/higherhrnet/coco/'
    ...                             'higherhrnet_hrnet-w32_8xb24-300e_coco-'
    ...                             '512x512.py')
    >>> save_converted_checkpoint(result, 'higherhrnet_w32_mmpose1x.pth')
"""
import hashlib
import os
import os.path as osp
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .apis.checkpoint import (CheckpointError, RefusedCheckpointError,
                              describe_load_error, load_checkpoint_file)

__all__ = [
    'CheckpointConversionError', 'ConversionResult', 'LAYOUTS',
    'load_source_state_dict', 'extract_state_dict', 'detect_layout',
    'convert_state_dict', 'check_state_dict', 'build_model_from_config',
    'convert_checkpoint', 'save_converted_checkpoint'
]

#: Source layouts :func:`convert_state_dict` understands.
LAYOUTS = ('official', 'mmpose0x', 'mmpose1x')

#: Top-level module names of the HRNet backbone (official == MMPose).
BACKBONE_ROOTS = frozenset({
    'conv1', 'bn1', 'conv2', 'bn2', 'layer1', 'transition1', 'stage2',
    'transition2', 'stage3', 'transition3', 'stage4'
})
#: Top-level module names of the HigherHRNet head (official == MMPose 0.x ==
#: this plugin).
HEAD_ROOTS = frozenset({'final_layers', 'deconv_layers'})

#: (backbone prefix, head prefix) of each layout.
_PREFIXES = {
    'official': ('', ''),
    'mmpose0x': ('backbone.', 'keypoint_head.'),
    'mmpose1x': ('backbone.', 'head.'),
}
#: Prefixes of the MMPose 1.x model's state dict.
_TARGET_PREFIXES = _PREFIXES['mmpose1x']

#: Keys a HigherHRNet state dict cannot do without (MMPose 1.x names).
_REQUIRED_KEYS = ('backbone.conv1.weight', 'head.final_layers.0.weight')

#: Keys under which checkpoints nest their state dict, in priority order.
_NESTING_KEYS = ('state_dict', 'model', 'model_state_dict', 'net')

#: How many keys an error message lists before summarising with a count.
MAX_LISTED_KEYS = 10

PathLike = Union[str, 'os.PathLike[str]']
ShapeMap = Mapping[str, Tuple[int, ...]]


#: Every failure of this module (the plugin's one checkpoint error class).
CheckpointConversionError = CheckpointError


@dataclass
class ConversionResult:
    """The outcome of :func:`convert_checkpoint`.

    Attributes:
        state_dict (OrderedDict[str, Tensor]): MMPose 1.x state dict.
        layout (str): Detected (or given) source layout, one of
            :data:`LAYOUTS`.
        source (str): Path of the source checkpoint.
        config (str, optional): Config the result was checked against.
        filled_keys (List[str]): Keys added during the check (only
            BatchNorm ``num_batches_tracked`` counters, set to 0, which
            checkpoints from PyTorch < 0.4.1 lack).
        source_sha256 (str): SHA-256 of the source file.
    """
    state_dict: 'OrderedDict[str, Tensor]'
    layout: str
    source: str
    config: Optional[str] = None
    filled_keys: List[str] = field(default_factory=list)
    source_sha256: str = ''

    @property
    def num_tensors(self) -> int:
        """int: Number of tensors in :attr:`state_dict`."""
        return len(self.state_dict)


def _list_keys(keys: Iterable[str], limit: int = MAX_LISTED_KEYS) -> str:
    """Format keys as ``'a', 'b', ... (and N more)``."""
    keys = list(keys)
    shown = ', '.join(repr(k) for k in keys[:limit])
    if len(keys) > limit:
        shown += f', ... (and {len(keys) - limit} more)'
    return shown


def _count(n: int, noun: str, plural: str = 's') -> str:
    return f'{n} {noun}' + ('' if n == 1 else plural)


def _root(key: str) -> str:
    return key.split('.', 1)[0]


def load_source_state_dict(
        path: PathLike,
        trust_source: bool = False) -> 'OrderedDict[str, Tensor]':
    """Read a checkpoint file and return its state dict.

    The file is read weights-only by
    :func:`~higherhrnet_plugin.apis.load_checkpoint_file` (tensors, plain
    containers, numbers and the numpy / MMEngine types of MMEngine
    checkpoints), so it cannot run code. The state dict may be the whole file
    or nested under ``state_dict`` (or ``model``); ``module.`` prefixes
    (``DataParallel``) are removed. See :func:`extract_state_dict`.

    Args:
        path (str | PathLike): The checkpoint file.
        trust_source (bool): Fall back to ``weights_only=False`` (full
            unpickling, which CAN RUN ARBITRARY CODE) when the file holds
            other Python objects. Only for files from a trusted source.
            Defaults to False.

    Returns:
        OrderedDict[str, Tensor]: The state dict, keys as stored minus any
        ``module.`` prefix.

    Raises:
        CheckpointConversionError: If the file is missing, unreadable,
            truncated or corrupt, holds objects a weights-only load refuses
            (without ``trust_source``), or holds no state dict.
    """
    source = os.fspath(path)
    try:
        obj = load_checkpoint_file(source, map_location='cpu')
    except CheckpointError as err:
        if not isinstance(err, RefusedCheckpointError):
            raise
        if not trust_source:
            raise RefusedCheckpointError(
                f'{err.reason}. If the file comes from a source you trust, '
                'retry with trust_source=True (--trust-source), which '
                'unpickles it fully and can run code', source) from None
        obj = _load_unsafe(source)
    return extract_state_dict(obj, source)


def _load_unsafe(source: str):
    """``torch.load`` with ``weights_only=False`` (trusted files only)."""
    try:
        return torch.load(source, map_location='cpu', weights_only=False)
    except Exception as err:
        raise CheckpointConversionError(describe_load_error(err, source),
                                        source) from None


def extract_state_dict(
        obj: object,
        source: Optional[str] = None) -> 'OrderedDict[str, Tensor]':
    """Find the state dict inside a loaded checkpoint object.

    Accepts a plain state dict (a mapping from names to tensors), or a
    mapping holding one under ``state_dict``, ``model``, ``model_state_dict``
    or ``net`` (searched in that order, recursively; e.g. MMPose / MMEngine
    checkpoints ``{'state_dict': ..., 'meta': ...}`` or the official training
    checkpoint ``{'epoch': ..., 'model': 'pose_higher_hrnet', 'state_dict':
    ...}``). Leading ``module.`` prefixes are removed from every key.

    Args:
        obj (object): What ``torch.load`` returned.
        source (str, optional): File name for error messages.

    Returns:
        OrderedDict[str, Tensor]: The state dict.

    Raises:
        CheckpointConversionError: If no state dict is found, it is empty,
            it holds non-tensor values, or removing ``module.`` makes two
            keys collide.
    """
    if not isinstance(obj, Mapping):
        raise CheckpointConversionError(
            f'expected a checkpoint dict, found a {type(obj).__name__}',
            source)
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        state_dict = obj
    else:
        for nest_key in _NESTING_KEYS:
            inner = obj.get(nest_key)
            if isinstance(inner, Mapping) and inner:
                return extract_state_dict(inner, source)
        if not obj:
            raise CheckpointConversionError('the checkpoint is empty', source)
        non_tensor = [
            str(k) for k, v in obj.items() if not isinstance(v, Tensor)
        ]
        if len(non_tensor) == len(obj):
            raise CheckpointConversionError(
                'no state dict found: the checkpoint holds no tensors and no '
                f'{"/".join(_NESTING_KEYS)} entry (top-level keys: '
                f'{_list_keys(map(str, obj))})', source, non_tensor)
        what = _count(len(non_tensor), 'non-tensor value')
        raise CheckpointConversionError(
            f'the state dict holds {what} at {_list_keys(non_tensor)}', source,
            non_tensor)

    result = OrderedDict()
    collisions = []
    for key, value in state_dict.items():
        key = str(key)
        new_key = key
        while new_key.startswith('module.'):
            new_key = new_key[len('module.'):]
        if new_key in result:
            collisions.append(key)
        result[new_key] = value
    if collisions:
        raise CheckpointConversionError(
            'keys collide after removing the "module." prefix: '
            f'{_list_keys(collisions)}', source, collisions)
    return result


def detect_layout(keys: Iterable[str], source: Optional[str] = None) -> str:
    """Tell which layout a HigherHRNet state dict is in.

    - ``'mmpose0x'`` if any key starts with ``keypoint_head.``;
    - ``'mmpose1x'`` if any key starts with ``head.`` or ``backbone.``;
    - ``'official'`` if any key starts with an official backbone or head
      module name (``conv1``, ``layer1``, ``stage2``, ``final_layers`` ...).

    The layout only says how keys are named; :func:`convert_state_dict`
    then rejects every key that does not belong to a HigherHRNet (e.g. the
    ``layer2`` ... ``fc`` keys of a ResNet, which shares ``conv1`` and
    ``layer1`` with HRNet).

    Args:
        keys (Iterable[str]): State dict keys (without ``module.``).
        source (str, optional): File name for error messages.

    Returns:
        str: One of :data:`LAYOUTS`.

    Raises:
        CheckpointConversionError: If no key looks like HigherHRNet's.
    """
    keys = list(keys)
    roots = {_root(k) for k in keys}
    if 'keypoint_head' in roots:
        return 'mmpose0x'
    if roots & {'head', 'backbone'}:
        return 'mmpose1x'
    if roots & (BACKBONE_ROOTS | HEAD_ROOTS):
        return 'official'
    raise CheckpointConversionError(
        'not a HigherHRNet checkpoint: no key belongs to an HRNet backbone '
        '(conv1, layer1, stage2, ...) or a HigherHRNet head (final_layers, '
        f'deconv_layers), with or without a backbone./keypoint_head./head. '
        f'prefix; found {_count(len(keys), "key")}: {_list_keys(keys)}',
        source, keys)


def _map_key(key: str, layout: str) -> Optional[str]:
    """The MMPose 1.x name of ``key`` in ``layout``, None if it has none."""
    for src_prefix, dst_prefix, roots in zip(_PREFIXES[layout],
                                             _TARGET_PREFIXES,
                                             (BACKBONE_ROOTS, HEAD_ROOTS)):
        if key.startswith(src_prefix):
            rest = key[len(src_prefix):]
            if '.' in rest and _root(rest) in roots:
                return dst_prefix + rest
    return None


def _unknown_key_hint(unknown: Sequence[str]) -> str:
    roots = {_root(k) for k in unknown}
    if roots & {
            'fc', 'classifier', 'incre_modules', 'downsamp_modules',
            'final_layer', 'layer2', 'layer3', 'layer4'
    }:
        return (' This looks like a classification (e.g. ImageNet ResNet or '
                'HRNet) checkpoint, not a HigherHRNet; to start from ImageNet '
                'weights set model.backbone.init_cfg instead.')
    return ''


def convert_state_dict(
        state_dict: Mapping[str, Tensor],
        layout: Optional[str] = None,
        source: Optional[str] = None) -> 'OrderedDict[str, Tensor]':
    """Rename a HigherHRNet state dict to the MMPose 1.x model's keys.

    ================ ============================ ==========================
    layout           backbone key                 head key
    ================ ============================ ==========================
    ``official``     ``<name>``                   ``<name>``
    ``mmpose0x``     ``backbone.<name>``          ``keypoint_head.<name>``
    ``mmpose1x``     ``backbone.<name>``          ``head.<name>``
    result           ``backbone.<name>``          ``head.<name>``
    ================ ============================ ==========================

    where the backbone ``<name>`` starts with ``conv1``, ``bn1``, ``conv2``,
    ``bn2``, ``layer1``, ``transition1-3`` or ``stage2-4`` and the head
    ``<name>`` with ``final_layers`` or ``deconv_layers``. Everything after
    the prefix is kept; tensors are neither copied nor changed.

    Args:
        state_dict (Mapping[str, Tensor]): Source state dict (``module.``
            prefixes already removed, see :func:`extract_state_dict`).
        layout (str, optional): One of :data:`LAYOUTS`; detected with
            :func:`detect_layout` when None.
        source (str, optional): File name for error messages.

    Returns:
        OrderedDict[str, Tensor]: The converted state dict, in source order.

    Raises:
        CheckpointConversionError: If a key has no MMPose 1.x counterpart
            (unknown key), the stem or the head is absent, or ``layout`` is
            not one of :data:`LAYOUTS`.
    """
    if layout is None:
        layout = detect_layout(state_dict, source)
    elif layout not in LAYOUTS:
        raise CheckpointConversionError(
            f'unknown layout {layout!r}; expected one of {LAYOUTS}', source)
    converted = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        new_key = _map_key(key, layout)
        if new_key is None:
            unknown.append(key)
        else:
            converted[new_key] = value
    if unknown:
        raise CheckpointConversionError(
            f'{_count(len(unknown), "unknown key")} for a HigherHRNet '
            f'checkpoint in the {layout!r} layout: {_list_keys(unknown)}.' +
            _unknown_key_hint(unknown), source, unknown)
    absent = [k for k in _REQUIRED_KEYS if k not in converted]
    if absent:
        names = [_source_name(k, layout) for k in absent]
        raise CheckpointConversionError(
            f'{_count(len(absent), "missing key")}: {_list_keys(names)} '
            f'({layout!r} layout); the checkpoint lacks the ' +
            ' and the '.join('HRNet stem' if k.
                             startswith('backbone.') else 'HigherHRNet head'
                             for k in absent), source, names)
    return converted


def _source_name(key: str, layout: str) -> str:
    """The name ``key`` (MMPose 1.x) had in ``layout`` (inverse of
    :func:`_map_key`)."""
    for src_prefix, dst_prefix in zip(_PREFIXES[layout], _TARGET_PREFIXES):
        if key.startswith(dst_prefix):
            return src_prefix + key[len(dst_prefix):]
    return key


def _architecture(shapes: ShapeMap) -> str:
    """Describe width / keypoints / tags of a converted state dict."""
    parts = []
    final0 = shapes.get('head.final_layers.0.weight')
    if final0 is not None and len(final0) == 4:
        parts.append(f'width {final0[1]}')
    last = max((int(k.split('.')[2]) for k in shapes
                if re.fullmatch(r'head\.final_layers\.\d+\.weight', k)),
               default=None)
    if last is not None and len(shapes[f'head.final_layers.{last}.weight']):
        num_keypoints = shapes[f'head.final_layers.{last}.weight'][0]
        parts.append(f'{num_keypoints} keypoints')
        if final0 is not None and len(final0):
            parts.append(f'{final0[0]} output-0 channels')
        parts.append(_count(last, 'deconv module'))
    return ', '.join(parts) if parts else 'unknown architecture'


def check_state_dict(
    state_dict: Mapping[str, Tensor],
    reference: Union[nn.Module, ShapeMap],
    source: Optional[str] = None,
    layout: str = 'mmpose1x',
    reference_name: str = 'the model',
    fill_num_batches_tracked: bool = True
) -> Tuple['OrderedDict[str, Tensor]', List[str]]:
    """Check a converted state dict against a model, key by key and shape by
    shape, as ``load_state_dict(strict=True)`` would, but naming everything
    that is wrong at once.

    Args:
        state_dict (Mapping[str, Tensor]): Converted (MMPose 1.x) state dict.
        reference (nn.Module | Mapping[str, tuple]): The model, or its
            ``{key: shape}``.
        source (str, optional): File name for error messages.
        layout (str): Source layout; unexpected keys are also shown under
            their source names. Defaults to ``'mmpose1x'``.
        reference_name (str): How messages call the model, e.g.
            ``'the model of <config>'``. Defaults to ``'the model'``.
        fill_num_batches_tracked (bool): Add BatchNorm
            ``num_batches_tracked`` counters (0) the checkpoint lacks, as
            PyTorch itself does for old checkpoints. Defaults to True.

    Returns:
        tuple: ``(state_dict, filled_keys)``, the (possibly completed)
        state dict and the keys that were added.

    Raises:
        CheckpointConversionError: Listing missing keys, unexpected keys
            and shape mismatches (up to :data:`MAX_LISTED_KEYS` of each, with
            counts).
    """
    if isinstance(reference, nn.Module):
        expected = {
            k: tuple(v.shape)
            for k, v in reference.state_dict().items()
        }
    else:
        expected = {k: tuple(v) for k, v in reference.items()}
    result = OrderedDict(state_dict)
    filled = []
    missing = [k for k in expected if k not in result]
    if fill_num_batches_tracked:
        for key in missing:
            if key.endswith('.num_batches_tracked') and expected[key] == ():
                result[key] = torch.tensor(0, dtype=torch.long)
                filled.append(key)
        missing = [k for k in missing if k not in result]
    unexpected = [k for k in result if k not in expected]
    mismatched = [
        k for k in result
        if k in expected and tuple(result[k].shape) != expected[k]
    ]
    if not (missing or unexpected or mismatched):
        return result, filled

    problems = []
    if missing:
        problems.append(
            f'{_count(len(missing), "missing key")} (in the model, not in '
            f'the checkpoint): {_list_keys(missing)}')
    if unexpected:
        names = [_describe_renamed(k, layout) for k in unexpected]
        problems.append(
            f'{_count(len(unexpected), "unexpected key")} (in the checkpoint,'
            f' not in the model): {", ".join(names[:MAX_LISTED_KEYS])}' +
            (f', ... (and {len(names) - MAX_LISTED_KEYS} more)' if len(names) >
             MAX_LISTED_KEYS else ''))
    if mismatched:
        details = [
            f'{k!r} checkpoint {tuple(result[k].shape)} vs model '
            f'{expected[k]}' for k in mismatched
        ]
        problems.append(f'{_count(len(mismatched), "shape mismatch", "es")}'
                        f': {"; ".join(details[:MAX_LISTED_KEYS])}' +
                        (f'; ... (and {len(details) - MAX_LISTED_KEYS} more)'
                         if len(details) > MAX_LISTED_KEYS else ''))
    ckpt_shapes = {k: tuple(v.shape) for k, v in result.items()}
    ckpt_arch, model_arch = _architecture(ckpt_shapes), _architecture(expected)
    hint = ''
    if ckpt_arch != model_arch:
        hint = (f' (checkpoint: {ckpt_arch}; model: {model_arch}; use the '
                'config that matches the checkpoint)')
    raise CheckpointConversionError(
        f'does not match {reference_name}{hint}: ' + '; '.join(problems),
        source, missing + unexpected + mismatched)


def _describe_renamed(key: str, layout: str) -> str:
    name = _source_name(key, layout)
    return repr(key) if name == key else f'{key!r} (source {name!r})'


def build_model_from_config(config: Union[PathLike, 'object']) -> nn.Module:
    """Build the model of an MMPose config (with this plugin registered).

    Args:
        config (str | PathLike | mmengine.Config): Config file or object.

    Returns:
        nn.Module: The model, e.g. a ``BottomupPoseEstimator``.

    Raises:
        CheckpointConversionError: If the config cannot be read or its model
            cannot be built.
    """
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules

    name = None
    try:
        if not isinstance(config, Config):
            name = os.fspath(config)
            if not osp.isfile(name):
                raise CheckpointConversionError('config file not found', name)
            config = Config.fromfile(name)
        register_all_modules(init_default_scope=False)
        # Build in MMPose's scope (e.g. for the data preprocessor) without
        # changing the caller's default scope.
        with DefaultScope.overwrite_default_scope('mmpose'):
            return MODELS.build(config.model)
    except CheckpointConversionError:
        raise
    except Exception as err:
        first_line = (str(err).strip().splitlines() or [''])[0]
        raise CheckpointConversionError(
            f'cannot build the model from this config ({type(err).__name__}: '
            f'{first_line})', name) from None


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def convert_checkpoint(src: PathLike,
                       config: Optional[Union[PathLike, object]] = None,
                       model: Optional[nn.Module] = None,
                       layout: Optional[str] = None,
                       trust_source: bool = False) -> ConversionResult:
    """Load, convert and (optionally) check a checkpoint.

    Args:
        src (str | PathLike): Source checkpoint (official, MMPose 0.x or
            MMPose 1.x layout).
        config (str | PathLike | Config, optional): Build this config's
            model and check that the converted dict loads into it with
            ``strict=True``.
        model (nn.Module, optional): Check against this model instead of
            building one from ``config``.
        layout (str, optional): Force a source layout (one of
            :data:`LAYOUTS`); detected when None.
        trust_source (bool): See :func:`load_source_state_dict`.

    Returns:
        ConversionResult: The converted state dict and where it came from.

    Raises:
        CheckpointConversionError: On any problem, naming the file and keys.
    """
    source = os.fspath(src)
    state_dict = load_source_state_dict(source, trust_source=trust_source)
    if layout is None:
        layout = detect_layout(state_dict, source)
    converted = convert_state_dict(state_dict, layout, source)
    filled = []
    config_name = None
    if config is not None or model is not None:
        if model is None:
            model = build_model_from_config(config)
        if config is not None:
            config_name = getattr(config, 'filename',
                                  None) or os.fspath(config)
        reference_name = (f'the model of {config_name}'
                          if config_name else 'the given model')
        converted, filled = check_state_dict(converted,
                                             model,
                                             source,
                                             layout,
                                             reference_name=reference_name)
        try:
            model.load_state_dict(converted, strict=True)
        except RuntimeError as err:  # a check above should have caught it
            raise CheckpointConversionError(
                'strict load into the model failed: '
                f'{str(err).splitlines()[0]}', source) from None
    return ConversionResult(state_dict=converted,
                            layout=layout,
                            source=source,
                            config=config_name,
                            filled_keys=filled,
                            source_sha256=_sha256(source))


def save_converted_checkpoint(result: ConversionResult, dst: PathLike) -> str:
    """Write ``{'state_dict': ..., 'meta': ...}`` with ``torch.save``.

    The file loads with MMEngine's ``load_checkpoint`` (so ``mim test mmpose
    CONFIG --checkpoint DST``, ``--cfg-options load_from=DST`` and
    ``mmpose.apis.init_model(CONFIG, DST)`` work) and with
    ``torch.load(weights_only=True)``: ``meta`` only holds strings and
    numbers describing the source. It is written to a temporary file first
    and then renamed, so a failed write leaves no partial file.

    Args:
        result (ConversionResult): From :func:`convert_checkpoint`.
        dst (str | PathLike): Output file; parent folders are created.

    Returns:
        str: The output path.

    Raises:
        CheckpointConversionError: If ``dst`` is the source file or cannot
            be written.
    """
    from . import __version__

    dst = os.fspath(dst)
    if osp.exists(dst) and osp.exists(result.source) and osp.samefile(
            dst, result.source):
        raise CheckpointConversionError(
            f'refusing to overwrite the source checkpoint with its '
            f'conversion; choose another output path than {dst}',
            result.source)
    meta = {
        'converted_from':
        osp.abspath(result.source),
        'source_layout':
        result.layout,
        'source_sha256':
        result.source_sha256,
        'checked_against_config':
        None if result.config is None else str(result.config),
        'num_tensors':
        result.num_tensors,
        'filled_keys':
        list(result.filled_keys),
        'converter':
        f'higherhrnet_plugin.checkpoint_conversion '
        f'{__version__}',
        'torch_version':
        str(torch.__version__),  # TorchVersion is not
        # allowed by torch.load(weights_only=True)
        'time':
        time.strftime('%Y-%m-%d %H:%M:%S'),
    }
    tmp = f'{dst}.tmp{os.getpid()}'
    try:
        os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
        torch.save({'state_dict': result.state_dict, 'meta': meta}, tmp)
        os.replace(tmp, dst)
    except OSError as err:
        if osp.exists(tmp):
            os.remove(tmp)
        raise CheckpointConversionError(
            f'cannot write {dst} ({type(err).__name__}: {err})',
            result.source) from None
    return dst
