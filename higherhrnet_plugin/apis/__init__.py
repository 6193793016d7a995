"""High-level entry points built on MMPose's APIs. Not imported by
``import higherhrnet_plugin``."""
from ..models.fuse_conv_bn import fuse_conv_bn
from .inference import inference_bottomup_batch, network_inputs

__all__ = ['fuse_conv_bn', 'inference_bottomup_batch', 'network_inputs']
