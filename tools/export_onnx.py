"""Export a HigherHRNet model (backbone + head) to ONNX.

Usage::

    python tools/export_onnx.py CONFIG CKPT OUT.onnx [--shape H W]
        [--opset N] [--legacy-exporter] [--check IMAGE]

The graph takes the normalised image ``input`` (B, 3, H, W) and returns the
raw per-resolution outputs ``output0``, ``output1``, ...; batch, height and
width are dynamic. With ``--check IMAGE`` the image is preprocessed as at test
time and ONNX Runtime's outputs are compared with PyTorch's, as are the people
found by both full inference paths. See docs/export.md.

Exit status: 0 on success, 1 on an error (one-line message on stderr), 2 on
bad command-line arguments.
"""
import argparse
import os.path as osp
import sys
import time
import warnings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export HigherHRNet (backbone + head) to ONNX with '
        'dynamic batch / height / width.')
    parser.add_argument('config', help='plugin config file')
    parser.add_argument('checkpoint', help='checkpoint file (MMPose 1.x '
                        'layout, or an official / MMPose 0.x checkpoint, '
                        'converted in memory); must match the config')
    parser.add_argument('out', help='output .onnx file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='example input size used for tracing (multiples of 32; the '
        'graph accepts any such size). Default: the config\'s input size')
    parser.add_argument('--opset', type=int, default=None,
                        help='ONNX opset (default 18)')
    parser.add_argument(
        '--legacy-exporter',
        action='store_true',
        help='use the TorchScript exporter (dynamo=False; the only one on '
        'torch < 2.5, deprecated on recent torch) '
        'instead of the torch.export-based one')
    parser.add_argument(
        '--check',
        metavar='IMAGE',
        help='compare ONNX Runtime with PyTorch on this image')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of errors')
    return parser.parse_args(argv)


class CliError(Exception):
    """An error reported as one line."""


def _require_file(path: str, what: str) -> None:
    if not osp.isfile(path):
        raise CliError(f'{what} not found: {path}')


def _default_shape(cfg):
    decoder = cfg.model.get('head', {}).get('decoder') or {}
    w, h = decoder.get('input_size', (512, 512))
    return int(h), int(w)


def _check(image_path, onnx_file, model, cfg) -> None:
    """ONNX Runtime vs PyTorch on one image: raw outputs and people."""
    import cv2
    import numpy as np
    import torch
    from mmpose.apis import inference_bottomup

    from higherhrnet_plugin.apis import network_inputs
    from higherhrnet_plugin.deploy import init_onnx_model

    image = cv2.imread(image_path)
    if image is None:
        raise CliError(f'cannot read image: {image_path}')
    ort_model = init_onnx_model(cfg, onnx_file)
    ours = inference_bottomup(ort_model, image)[0]
    x = network_inputs(ort_model, image)
    x = x[0] if isinstance(x, list) else x  # the base scale
    with torch.no_grad():
        torch_outputs = model.network(x)
    print(f'check:   {image_path} -> input {"x".join(map(str, x.shape))}')
    for i, (o, r) in enumerate(zip(ort_model.network(x), torch_outputs)):
        print(f'         output{i} {"x".join(map(str, o.shape))}: max abs '
              f'error {(o - r).abs().max().item():.3g} (max |output| '
              f'{r.abs().max().item():.3g})')
    ours = ours.pred_instances
    theirs = inference_bottomup(model, image)[0].pred_instances
    line = (f'         people: onnxruntime {len(ours)}, pytorch '
            f'{len(theirs)}')
    if len(ours) == len(theirs) and len(ours):
        line += (f'; max keypoint difference '
                 f'{np.abs(ours.keypoints - theirs.keypoints).max():.3g} px'
                 ', max score difference '
                 f'{np.abs(ours.bbox_scores - theirs.bbox_scores).max():.3g}')
    print(line)


def run(args) -> None:
    _require_file(args.config, 'config')
    _require_file(args.checkpoint, 'checkpoint')
    if args.check:
        _require_file(args.check, 'image')
    if args.shape and any(s <= 0 or s % 32 for s in args.shape):
        raise CliError(f'--shape must be positive multiples of 32, got '
                       f'{args.shape[0]} {args.shape[1]}')

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        import higherhrnet_plugin  # noqa: F401  (registers modules)
        from mmengine.config import Config

        from higherhrnet_plugin.apis import init_model
        from higherhrnet_plugin.deploy import export_onnx
        from higherhrnet_plugin.deploy.onnx_export import (
            DEFAULT_OPSET, dynamo_exporter_available)

        cfg = Config.fromfile(args.config)
        print(f'config:  {args.config}')
        model = init_model(cfg, args.checkpoint)  # strict, weights only
        print(f'weights: {args.checkpoint}')
        h, w = args.shape or _default_shape(cfg)
        opset = args.opset or DEFAULT_OPSET
        dynamo = not args.legacy_exporter and dynamo_exporter_available()
        exporter = 'dynamo (torch.export)' if dynamo else 'torchscript'
        print(f'export:  {exporter}, opset {opset}, traced at 1x3x{h}x{w}, '
              'dynamic batch/height/width ...', flush=True)
        start = time.time()
        export_onnx(
            model,
            args.out,
            input_shape=(1, 3, h, w),
            opset=opset,
            dynamo=dynamo)
        print(f'         done in {time.time() - start:.1f} s')
        print(f'saved:   {osp.abspath(args.out)}')
        if args.check:
            _check(args.check, args.out, model, cfg)


def main(argv=None) -> int:
    args = parse_args(argv)
    prog = osp.basename(sys.argv[0]) if argv is None else 'export_onnx'
    from higherhrnet_plugin.apis import CheckpointError
    from higherhrnet_plugin.utils import run_cli
    return run_cli(prog, lambda: run(args), args.debug,
                   (CliError, CheckpointError))


if __name__ == '__main__':
    sys.exit(main())
