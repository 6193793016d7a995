"""Building a model with its weights, strictly.

MMPose's ``init_model`` (through MMEngine's ``load_checkpoint``) loads
non-strictly: given a checkpoint of another model, or an official HigherHRNet
checkpoint whose keys are named differently, it warns with two screens of key
names and returns a network with random weights. Every tool of the plugin
uses :func:`init_model` / :func:`load_weights` instead, which

- read the file weights-only (:func:`~.checkpoint.load_checkpoint_file`);
- recognise the official and MMPose 0.x layouts and convert them in memory,
  saying so in one line (``tools/convert_checkpoint.py`` saves a conversion);
- load with ``strict=True`` semantics, stopping with one
  :class:`~.checkpoint.CheckpointError` line that names the file and what
  does not match.
"""
import os
from typing import Optional, Union

from torch import nn

from .checkpoint import CheckpointError, load_checkpoint_file

__all__ = ['init_model', 'load_weights']

#: How :func:`load_weights` names the layouts it converts.
_LAYOUT_NAMES = {
    'official': 'an official HigherHRNet',
    'mmpose0x': 'an MMPose 0.x',
}


def _layout_to_convert(state_dict, source: str) -> Optional[str]:
    """'official' / 'mmpose0x' if the keys are named that way, else None
    (the keys are used as they are)."""
    from ..checkpoint_conversion import detect_layout
    try:
        layout = detect_layout(state_dict, source)
    except CheckpointError:  # not HigherHRNet-like: compared as it is
        return None
    return layout if layout in _LAYOUT_NAMES else None


def load_weights(model: nn.Module,
                 checkpoint: Union[str, 'os.PathLike[str]'],
                 reference_name: str = 'the model') -> dict:
    """Load a checkpoint file into ``model``, strictly.

    Args:
        model (nn.Module): The model, e.g. a ``BottomupPoseEstimator``.
        checkpoint (str | PathLike): A checkpoint of this plugin (MMPose 1.x
            layout, trained or converted), or an official / MMPose 0.x
            HigherHRNet checkpoint (converted in memory, reported in one
            line through MMEngine's current logger).
        reference_name (str): How errors call the model, e.g.
            ``'the model of <config>'``.

    Returns:
        dict: The checkpoint's ``meta`` (empty if it has none).

    Raises:
        CheckpointError: If the file cannot be read safely, or its weights
            do not match the model exactly (missing, unexpected or
            mis-shaped keys; BatchNorm counters absent from old checkpoints
            are filled with 0, as PyTorch does).
    """
    from mmengine.logging import print_log

    from ..checkpoint_conversion import (check_state_dict, convert_state_dict,
                                         extract_state_dict)
    source = os.fspath(checkpoint)
    loaded = load_checkpoint_file(source, map_location='cpu')
    state_dict = extract_state_dict(loaded, source)
    layout = _layout_to_convert(state_dict, source)
    if layout is not None:
        state_dict = convert_state_dict(state_dict, layout, source)
        print_log(f'{source}: {_LAYOUT_NAMES[layout]} checkpoint, converted '
                  'to the MMPose 1.x layout in memory (tools/'
                  'convert_checkpoint.py saves the conversion)',
                  logger='current')
    state_dict, _ = check_state_dict(state_dict, model, source,
                                     layout or 'mmpose1x', reference_name)
    model.load_state_dict(state_dict, strict=True)
    meta = loaded.get('meta') if isinstance(loaded, dict) else None
    return meta if isinstance(meta, dict) else {}


def init_model(config,
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """:func:`mmpose.apis.init_model`, with the weights loaded strictly by
    :func:`load_weights`.

    Args:
        config (str | Path | Config): The model config.
        checkpoint (str, optional): The weights. None builds the model with
            PyTorch's default initialisation (random weights), as MMPose
            does: only when the caller asks for it.
        device (str): Where the model goes. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Config overrides.

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` and ``dataset_meta``
        (from the checkpoint's ``meta`` if it has them, else the config).

    Raises:
        CheckpointError: See :func:`load_weights`.
    """
    from mmpose.apis import init_model as mmpose_init_model
    model = mmpose_init_model(config, None, device=device,
                              cfg_options=cfg_options)
    if checkpoint is not None:
        name = getattr(model.cfg, 'filename', None)
        meta = load_weights(
            model, checkpoint,
            f'the model of {name}' if name else 'the model of the config')
        if 'dataset_meta' in meta:
            model.dataset_meta = meta['dataset_meta']
        model.to(device)
    return model
