"""Deployment of HigherHRNet models: ONNX export and an ONNX Runtime pose
estimator.

Not imported by ``import higherhrnet_plugin`` (it needs ``onnx``,
``onnxruntime`` and, for the default exporter, ``onnxscript``); import it
explicitly. See docs/export.md.
"""
from .onnx_backend import (OnnxBottomupPoseEstimator, init_onnx_model,
                           onnx_model_config, test_onnx_model)
from .onnx_export import export_onnx, network_output_names

__all__ = [
    'export_onnx', 'network_output_names', 'OnnxBottomupPoseEstimator',
    'init_onnx_model', 'onnx_model_config', 'test_onnx_model'
]
