"""High-level entry points built on MMPose's APIs. Not imported by
``import higherhrnet_plugin``."""
