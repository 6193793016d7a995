"""Deployment of HigherHRNet models: ONNX export and ONNX Runtime inference.

Not imported by ``import higherhrnet_plugin`` (it needs ``onnx``,
``onnxruntime`` and, for the default exporter, ``onnxscript``); import it
explicitly. See docs/export.md.
"""
from .onnx_export import export_onnx, network_output_names
from .onnx_inference import OnnxHigherHRNet, OnnxPoseResult

__all__ = [
    'export_onnx', 'network_output_names', 'OnnxHigherHRNet', 'OnnxPoseResult'
]
