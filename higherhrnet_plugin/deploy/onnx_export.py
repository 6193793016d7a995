"""Export the HigherHRNet network (backbone + head) to ONNX.

The graph holds the network only: input ``input`` (B, 3, H, W), the
normalised RGB image, and one output per head resolution, ``output0``
(B, K + K*L, H/4, W/4), ``output1`` (B, K, H/2, W/2), ... exactly as
:meth:`HigherHRNetHead.forward` returns them. Batch, height and width are
dynamic (H and W must be multiples of 32, which ``HigherHRNetResize``
guarantees: it aligns them to 64). Flip / multi-scale aggregation and the
associative-embedding grouping stay in Python and are the plugin's own
functions (see :mod:`higherhrnet_plugin.deploy.onnx_inference`).

Exporter: ``torch.onnx.export(dynamo=True)`` (the default of torch >= 2.9,
based on ``torch.export``; it needs ``onnxscript``) with ``dynamic_shapes``,
where torch has it (:func:`dynamo_exporter_available`). The TorchScript
exporter (``dynamo=False`` with ``dynamic_axes``) also produces a correct
dynamic-size graph for this model; it is deprecated on recent torch (it warns
on every call) and the only one on torch < 2.5 (e.g. torch 2.1, whose
``torch.export`` lacks ``Dim``). See docs/export.md.
"""
import importlib.util
import inspect
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

DEFAULT_OPSET = 18
INPUT_NAME = 'input'


class _Network(nn.Module):
    """Backbone (+ neck) and head of a pose estimator, returning the head's
    per-resolution outputs as a tuple."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        outputs = self.model.head(self.model.extract_feat(x))
        if isinstance(outputs, Tensor):
            return (outputs, )
        return tuple(outputs)


def network_output_names(num_outputs: int) -> List[str]:
    """Names of the graph outputs: ``output0``, ``output1``, ..."""
    return [f'output{i}' for i in range(num_outputs)]


def dynamo_exporter_available() -> bool:
    """Whether this torch has what the dynamo exporter needs here:
    ``torch.onnx.export(dynamo=...)``, ``torch.export.Dim`` (dynamic shapes)
    and the ``onnxscript`` package."""
    export = getattr(torch, 'export', None)
    return (hasattr(export, 'Dim') and _export_takes_dynamo()
            and importlib.util.find_spec('onnxscript') is not None)


def _export_takes_dynamo() -> bool:
    """``torch.onnx.export`` has the ``dynamo`` switch (torch >= 2.5)."""
    return 'dynamo' in inspect.signature(torch.onnx.export).parameters


def _choose_exporter(dynamo: Optional[bool]) -> bool:
    available = dynamo_exporter_available()
    if dynamo and not available:
        raise RuntimeError(
            'the dynamo ONNX exporter needs torch >= 2.5 (torch.export.Dim, '
            'torch.onnx.export(dynamo=...)) and onnxscript; this is torch '
            f'{torch.__version__}: use the TorchScript exporter '
            '(dynamo=False, tools/export_onnx.py --legacy-exporter)')
    return available if dynamo is None else dynamo


def export_onnx(model: nn.Module,
                out_file: str,
                input_shape: Sequence[int] = (1, 3, 512, 512),
                opset: int = DEFAULT_OPSET,
                dynamo: Optional[bool] = None,
                check: bool = True) -> str:
    """Export backbone + head of a HigherHRNet model to ``out_file``.

    Args:
        model (nn.Module): a bottom-up pose estimator (``extract_feat`` and
            ``head``), e.g. from :func:`mmpose.apis.init_model`.
        out_file (str): the ``.onnx`` file to write (one self-contained
            file; its folder is created).
        input_shape (Sequence[int]): (B, 3, H, W) of the example input used
            for tracing. All of B, H, W stay dynamic in the graph; H and W
            must be multiples of 32.
        opset (int): ONNX opset. Defaults to 18 (the dynamo exporter's
            native opset; lower ones go through ONNX's version converter).
        dynamo (bool, optional): use the ``torch.export``-based exporter
            (True) or the TorchScript one (False). Default (None): the dynamo
            exporter where :func:`dynamo_exporter_available`, else
            TorchScript.
        check (bool): run ``onnx.checker`` on the written file.

    Returns:
        str: ``out_file``.
    """
    if len(input_shape) != 4:
        raise ValueError(f'input_shape must be (B, 3, H, W), got '
                         f'{tuple(input_shape)}')
    B, C, H, W = (int(s) for s in input_shape)
    if H % 32 or W % 32:
        raise ValueError(f'input height and width must be multiples of 32, '
                         f'got {H}x{W}')
    dynamo = _choose_exporter(dynamo)
    network = _Network(model)
    was_training = model.training
    network.eval()
    try:
        device = next(model.parameters()).device
        dummy = torch.zeros(B, C, H, W, device=device)
        with torch.no_grad():
            num_outputs = len(network(dummy))
        output_names = network_output_names(num_outputs)
        folder = osp.dirname(osp.abspath(out_file))
        os.makedirs(folder, exist_ok=True)
        if dynamo:
            dims = {
                0: torch.export.Dim('batch'),
                2: torch.export.Dim('height'),
                3: torch.export.Dim('width')
            }
            torch.onnx.export(
                network, (dummy, ),
                out_file,
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=output_names,
                opset_version=opset,
                dynamic_shapes={'x': dims},
                external_data=False,
                optimize=True,
                verbose=False)
        else:
            axes = {INPUT_NAME: {0: 'batch', 2: 'height', 3: 'width'}}
            for i, name in enumerate(output_names):
                axes[name] = {0: 'batch', 2: f'height{i}', 3: f'width{i}'}
            # older torch has only this exporter, and no switch for it
            switch = dict(dynamo=False) if _export_takes_dynamo() else {}
            torch.onnx.export(
                network, (dummy, ),
                out_file,
                **switch,
                input_names=[INPUT_NAME],
                output_names=output_names,
                opset_version=opset,
                dynamic_axes=axes,
                do_constant_folding=True)
    finally:
        network.model.train(was_training)
    if check:
        import onnx
        onnx.checker.check_model(out_file)
    return out_file
