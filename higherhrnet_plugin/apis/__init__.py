"""High-level entry points built on MMPose's APIs: model building with
strict, weights-only checkpoint loading, and inference helpers. Not imported
by ``import higherhrnet_plugin``."""
from ..models.fuse_conv_bn import fuse_conv_bn
from .checkpoint import (CheckpointError, CheckpointNotFoundError,
                         RefusedCheckpointError, load_checkpoint_file)
from .inference import (inference_bottomup_batch, network_inputs,
                        run_test_pipeline)
from .model import init_model, load_weights

__all__ = [
    'CheckpointError', 'CheckpointNotFoundError', 'RefusedCheckpointError',
    'load_checkpoint_file', 'init_model', 'load_weights', 'fuse_conv_bn',
    'inference_bottomup_batch', 'network_inputs', 'run_test_pipeline'
]
