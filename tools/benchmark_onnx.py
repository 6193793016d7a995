"""Network forward time: PyTorch vs ONNX Runtime, side by side, on CPU.

Usage::

    python tools/benchmark_onnx.py [--config CONFIG] [--checkpoint CKPT]
        [--onnx FILE] [--shape H W] [--runs N] [--threads T]

Exports the config's model (backbone + head; random weights unless
``--checkpoint``: the speed does not depend on them) unless ``--onnx`` names
an existing export, then times ``model.head(model.extract_feat(x))`` under
``torch.no_grad()`` and ``InferenceSession.run`` on the same input, alternating
the two, after warm-up runs. Prints the median (and min / max) per runtime.
Aggregation and grouping are not timed: they are the same Python code on
both paths. See docs/export.md.
"""
import argparse
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
import warnings

DEFAULT_CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'higherhrnet',
    'coco', 'higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--onnx', default=None,
                        help='an existing export of the config\'s model')
    parser.add_argument('--shape', type=int, nargs=2, default=(512, 512),
                        metavar=('H', 'W'))
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=os.cpu_count(),
                        help='intra-op threads of both runtimes')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for path, what in ((args.config, 'config'),
                       (args.checkpoint, 'checkpoint'), (args.onnx, 'onnx')):
        if path is not None and not osp.isfile(path):
            print(f'benchmark_onnx: error: {what} not found: {path}',
                  file=sys.stderr)
            return 1
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        import higherhrnet_plugin  # noqa: F401  (first: applies the shims)
        import numpy as np
        import onnxruntime as ort
        import torch

        from higherhrnet_plugin.apis import CheckpointError, init_model
        from higherhrnet_plugin.benchmarks.machine import cpu_name
        from higherhrnet_plugin.deploy import export_onnx

        torch.set_num_threads(args.threads)
        try:  # strict; random weights only without --checkpoint
            model = init_model(args.config, args.checkpoint)
        except CheckpointError as err:
            print(f'benchmark_onnx: error: {err}', file=sys.stderr)
            return 1
        h, w = args.shape
        onnx_file = args.onnx
        tmp = None
        if onnx_file is None:
            tmp = tempfile.TemporaryDirectory()
            onnx_file = osp.join(tmp.name, 'model.onnx')
            start = time.time()
            export_onnx(model, onnx_file, input_shape=(1, 3, h, w))
            print(f'export: {time.time() - start:.1f} s')

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(
            onnx_file, options, providers=['CPUExecutionProvider'])
        input_name = session.get_inputs()[0].name

    x = np.random.RandomState(0).randn(1, 3, h, w).astype(np.float32)
    xt = torch.from_numpy(x)

    def run_torch():
        with torch.no_grad():
            return model.head(model.extract_feat(xt))

    def run_ort():
        return session.run(None, {input_name: x})

    err = max(
        float(np.abs(o - r.numpy()).max())
        for o, r in zip(run_ort(), run_torch()))
    for _ in range(args.warmup):
        run_torch()
        run_ort()
    load_before = os.getloadavg()[0]
    times = {'pytorch': [], 'onnxruntime': []}
    for _ in range(args.runs):
        for name, fn in (('pytorch', run_torch), ('onnxruntime', run_ort)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)

    print(f'model:   {osp.basename(args.config)}'
          f'{" (random weights)" if args.checkpoint is None else ""}')
    print(f'input:   1x3x{h}x{w}; CPU: {cpu_name()}, '
          f'{os.cpu_count()} logical cores, {args.threads} threads; '
          f'torch {torch.__version__}, onnxruntime {ort.__version__}')
    print(f'runs:    {args.runs} (after {args.warmup} warm-up), alternating; '
          f'1-min load average before / after: {load_before:.2f} / '
          f'{os.getloadavg()[0]:.2f}')
    print(f'max abs output difference: {err:.2e}')
    medians = {}
    for name, values in times.items():
        medians[name] = statistics.median(values)
        print(f'{name:12s} median {medians[name] * 1e3:8.1f} ms   '
              f'min {min(values) * 1e3:8.1f}   max {max(values) * 1e3:8.1f}')
    print(f'speed-up (pytorch / onnxruntime medians): '
          f'{medians["pytorch"] / medians["onnxruntime"]:.2f}x')
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
