#!/usr/bin/env python
"""Compare HigherHRNet with MMPose's bottom-up models on this machine (CPU).

For every model, at the input size of its own test pipeline: parameters,
GFLOPs, forward / decode / end-to-end latency without and with flip test
(medians, models measured round-robin), peak memory of one inference (a
fresh process per model) and, with ``--checkpoint NAME=PATH`` and
``--data-root``/``--ann-file``, COCO AP. Weights are random unless a
checkpoint is given. Models that cannot be built or run here are reported
with the reason. Writes ``results.md``, ``results.csv`` and ``latency.png``
to ``--out-dir``.

The measurements are those of ``higherhrnet_plugin.benchmarks.comparison``;
docs/benchmark.md defines every column.

Examples::

    python tools/benchmark.py                       # all default models
    python tools/benchmark.py --models w32 ae rtmo --repeats 2 --threads 2
    python tools/benchmark.py --models tiny=configs/higherhrnet/coco/\
higherhrnet_hrnet-tiny_1xb2-30e_coco-256x256.py --checkpoint tiny=tiny.pth \
--data-root ../shared/data/coco/ --ann-file test_coco.json
"""
import argparse
import datetime
import os
import sys
import warnings
from pathlib import Path
from typing import List

if 'torch' not in sys.modules:  # read once, when OpenMP loads with torch
    # Idle OpenMP threads sleep instead of spinning: with other jobs on the
    # cores, spinning threads slow a 2-thread forward down 3-20x.
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import higherhrnet_plugin  # noqa: E402,F401  (first: shims mmpose needs)
import torch  # noqa: E402

from higherhrnet_plugin.benchmarks.comparison import (  # noqa: E402
    APData, Row, compare_models, load_images, log, resolve_specs,
    warn_if_busy)
from higherhrnet_plugin.benchmarks.comparison_report import (  # noqa: E402
    run_context, write_outputs)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / 'shared' / 'data' / 'coco'
DEFAULT_OUT_DIR = REPO / 'work_dirs' / 'benchmark'

OURS = REPO / 'configs' / 'higherhrnet' / 'coco'
MMPOSE = 'mmpose::body_2d_keypoint/'
DEFAULT_MODELS = {  # key: (label, config)
    'w32': ('HigherHRNet-W32-512 (ours)',
            str(OURS / 'higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py')),
    'w48': ('HigherHRNet-W48-640 (ours)',
            str(OURS / 'higherhrnet_hrnet-w48_8xb16-300e_coco-640x640.py')),
    'ae': ('AE-HRNet-W32-512', MMPOSE + 'associative_embedding/coco/'
           'ae_hrnet-w32_8xb24-300e_coco-512x512.py'),
    'dekr': ('DEKR-HRNet-W32-512',
             MMPOSE + 'dekr/coco/dekr_hrnet-w32_8xb10-140e_coco-512x512.py'),
    'cid': ('CID-HRNet-W32-512',
            MMPOSE + 'cid/coco/cid_hrnet-w32_8xb20-140e_coco-512x512.py'),
    'rtmo': ('RTMO-s-640',
             MMPOSE + 'rtmo/coco/rtmo-s_8xb32-600e_coco-640x640.py'),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='default models: ' + ', '.join(
            f'{key} = {label}' for key, (label, _) in DEFAULT_MODELS.items()))
    parser.add_argument(
        '--models', nargs='+', default=list(DEFAULT_MODELS),
        metavar='KEY|NAME=CONFIG',
        help='default model keys and/or NAME=CONFIG pairs (a config path, '
        'or mmpose::<path under MMPose\'s configs>); default: all keys')
    parser.add_argument(
        '--checkpoint', nargs='+', default=[], metavar='NAME=PATH',
        help='weights per model (key or name); with --data-root and '
        '--ann-file also evaluates AP')
    parser.add_argument('--data-root', help='dataset folder for AP')
    parser.add_argument(
        '--ann-file',
        help='COCO keypoint annotations, relative to --data-root')
    parser.add_argument(
        '--img-prefix', default='',
        help='image folder relative to --data-root (default: none)')
    parser.add_argument(
        '--images', type=Path, default=DEFAULT_IMAGES,
        help='folder of images to time on (default: ../shared/data/coco)')
    parser.add_argument(
        '--repeats', type=int, default=1,
        help='timed passes over all images (default 1)')
    parser.add_argument(
        '--threads', type=int, default=None,
        help='torch CPU threads (default: torch default, one per core)')
    parser.add_argument(
        '--no-memory', action='store_true',
        help='skip the peak-memory subprocesses')
    parser.add_argument('--out-dir', type=Path, default=DEFAULT_OUT_DIR)
    return parser.parse_args(argv)


def main(argv=None) -> List[Row]:
    args = parse_args(argv)
    warnings.filterwarnings('ignore', category=UserWarning)
    warnings.filterwarnings('ignore', category=FutureWarning)
    if args.threads:
        torch.set_num_threads(args.threads)
    started, load_before = datetime.datetime.now(), os.getloadavg()[0]
    warn_if_busy(torch.get_num_threads())
    try:
        specs = resolve_specs(args.models, args.checkpoint, DEFAULT_MODELS)
        images = load_images(args.images)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(str(err))
    ap_data = None
    if args.data_root and args.ann_file:
        ap_data = APData(args.data_root, args.ann_file, args.img_prefix)

    rows = compare_models(specs, images, args.images, args.repeats,
                          memory=not args.no_memory, threads=args.threads,
                          ap_data=ap_data, ap_work_dir=args.out_dir / 'ap')
    context = run_context(started, load_before,
                          f'{len(images)} from {args.images}', args.repeats)
    table = write_outputs(rows, context, args.out_dir)
    print(table)
    log(f'wrote results.md, results.csv, latency.png to {args.out_dir}')
    return rows


if __name__ == '__main__':
    main()
