"""Model building with strict, weights-only checkpoint loading."""
from .checkpoint import (CheckpointError, CheckpointNotFoundError,
                         RefusedCheckpointError, load_checkpoint_file)
from .model import init_model, load_weights

__all__ = [
    'CheckpointError', 'CheckpointNotFoundError', 'RefusedCheckpointError',
    'load_checkpoint_file',
    'init_model', 'load_weights'
]
