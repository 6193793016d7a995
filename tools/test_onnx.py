#!/usr/bin/env python
"""Evaluate an exported HigherHRNet (ONNX Runtime) on a COCO-format dataset.

Usage::

    python tools/test_onnx.py CONFIG MODEL.onnx [--work-dir DIR]
        [--threads N] [--cfg-options KEY=VALUE ...]

CONFIG is the config the model was exported from (tools/export_onnx.py):
its test dataloader, test pipeline, data preprocessor, test_cfg (flip /
multi-scale) and test evaluator are used, so the metrics are those
``mim test mmpose CONFIG --checkpoint CKPT`` prints for the PyTorch model,
in the same format. Point it at another dataset with ``--cfg-options
test_dataloader.dataset.data_root=... test_evaluator.ann_file=...``.
See docs/export.md.
"""
import argparse
import os.path as osp
import sys


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the config the model was exported '
                        'from')
    parser.add_argument('onnx', help='the exported .onnx file')
    parser.add_argument('--work-dir', default=None,
                        help='folder for the logs (default: '
                        'work_dirs/<config name>_onnx)')
    parser.add_argument('--threads', type=int, default=None,
                        help='ONNX Runtime intra-op threads')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        metavar='KEY=VALUE',
                        help='override config settings, as in MMPose\'s tools')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of errors')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from higherhrnet_plugin.utils import run_cli

    def evaluate():
        for path, what in ((args.config, 'config'), (args.onnx, 'model')):
            if not osp.isfile(path):
                raise FileNotFoundError(f'{what} not found: {path}')
        import higherhrnet_plugin  # noqa: F401  (registers modules)
        from higherhrnet_plugin.deploy import test_onnx_model
        work_dir = args.work_dir or osp.join(
            'work_dirs',
            osp.splitext(osp.basename(args.config))[0] + '_onnx')
        test_onnx_model(args.config, args.onnx, work_dir, args.cfg_options,
                        num_threads=args.threads)

    return run_cli('test_onnx', evaluate, args.debug, (FileNotFoundError, ))


if __name__ == '__main__':
    sys.exit(main())
