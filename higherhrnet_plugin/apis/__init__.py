"""High-level entry points built on MMPose's APIs: model building with
strict, weights-only checkpoint loading, inference helpers and drawing.
Not imported by ``import higherhrnet_plugin``; the programs behind the tools
are modules of their own (:mod:`.demo`, :mod:`.quickstart`)."""
from ..models.fuse_conv_bn import fuse_conv_bn
from .checkpoint import (CheckpointError, CheckpointNotFoundError,
                         RefusedCheckpointError, load_checkpoint_file)
from .inference import (inference_bottomup_batch, network_inputs,
                        run_test_pipeline)
from .model import init_model, load_weights
from .visualization import build_visualizer, draw_prediction

__all__ = [
    'CheckpointError', 'CheckpointNotFoundError', 'RefusedCheckpointError',
    'load_checkpoint_file', 'init_model', 'load_weights', 'fuse_conv_bn',
    'inference_bottomup_batch', 'network_inputs', 'run_test_pipeline',
    'build_visualizer', 'draw_prediction'
]
