#!/usr/bin/env python
"""Overfit check: train the tiny HigherHRNet on the 4 real COCO images.

A benchmark-style sanity check of the whole training / evaluation path (not
part of the test suite). It trains
``configs/higherhrnet/coco/higherhrnet_hrnet-tiny_1xb2-30e_coco-256x256.py``
on ``../shared/data/coco`` (4 images, 12 people with keypoints) WITHOUT
augmentation -- ``BottomupRandomAffine`` with every random factor at 0 and no
flip, so each epoch shows the network the same 4 inputs -- and evaluates
CocoMetric on the same images (flip test off, the config's test resize)
before training and every ``--eval-interval`` epochs.

Training input: by default the whole image with its height scaled to 256,
padded to 448 x 256 (the scale the test resize uses: short side 256);
``--square-crop`` trains on the config's 256 x 256 centre crop instead,
which never shows the network the people near the left and right edges of
these landscape images, so AP cannot get far.

It prints one row per evaluation:

    epoch | loss | loss_heatmap_0 | loss_heatmap_1 | loss_pull_0 |
    loss_push_0 | coco/AP | coco/AP .5 | coco/AR

The loss columns are means over the iterations of that epoch (row 0: the
first iteration, i.e. the untrained model on the first batch).

Exit status: 0 if the loss fell (mean over the last epoch < mean over the
first epoch) and the final AP is above ``--min-ap`` (default 0); 1 otherwise.

The run is ``higherhrnet_plugin.benchmarks.overfit``'s; see docs/training.md.

Usage (from the repo root; the default 200 epochs take about 3 minutes on 2
idle CPU cores, 2 iterations of about 0.4 s per epoch)::

    .venv/bin/python tools/overfit_benchmark.py
    .venv/bin/python tools/overfit_benchmark.py --epochs 400 --eval-interval 25
    # a wider variant (HRNet widths 16/32/64/128, 16-channel head)
    .venv/bin/python tools/overfit_benchmark.py --cfg-options \
        "model.backbone.extra.stage2.num_channels=(16,32)" \
        "model.backbone.extra.stage3.num_channels=(16,32,64)" \
        "model.backbone.extra.stage4.num_channels=(16,32,64,128)" \
        model.head.in_channels=16 "model.head.deconv_out_channels=(16,)"
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = (REPO / 'configs' / 'higherhrnet' / 'coco' /
               'higherhrnet_hrnet-tiny_1xb2-30e_coco-256x256.py')
DEFAULT_DATA_ROOT = REPO.parent / 'shared' / 'data' / 'coco'


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Overfit the tiny HigherHRNet on the 4 real COCO images '
        'and report loss and AP.')
    parser.add_argument('--config', default=str(TINY_CONFIG))
    parser.add_argument(
        '--data-root',
        default=str(DEFAULT_DATA_ROOT),
        help='folder with test_coco.json and the images')
    parser.add_argument('--epochs', type=int, default=200)
    parser.add_argument(
        '--train-input-size',
        type=int,
        nargs=2,
        default=(448, 256),
        metavar=('W', 'H'),
        help='training input (w, h), multiples of 32; the whole image is '
        'fitted in it (default 448 256: height 256 as at test time, room for '
        'the 4 images, whose aspect ratios are 1.5-1.63)')
    parser.add_argument(
        '--square-crop',
        action='store_true',
        help='train on the config\'s square input (centre crop) instead')
    parser.add_argument(
        '--eval-interval',
        type=int,
        default=50,
        help='evaluate CocoMetric every this many epochs (and at epoch 0)')
    parser.add_argument('--lr', type=float, default=None,
                        help='Adam learning rate (default: the config\'s)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--min-ap',
        type=float,
        default=0.0,
        help='fail unless the final coco/AP is above this')
    parser.add_argument(
        '--work-dir',
        default=None,
        help='logs and the final checkpoint (default: a temporary folder)')
    parser.add_argument(
        '--verbose',
        action='store_true',
        help='show the MMEngine log and COCO evaluation output on the console')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='extra key=value overrides, as in tools/train.py')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    os.environ.setdefault('OMP_NUM_THREADS', '2')  # before torch loads
    sys.path.insert(0, str(REPO))  # the plugin, if it is not installed
    args = parse_args(argv)

    import higherhrnet_plugin  # noqa: F401  (shims, registers modules)
    from higherhrnet_plugin.benchmarks.overfit import (build_overfit_config,
                                                       run_overfit)

    work_dir = args.work_dir or tempfile.mkdtemp(prefix='overfit_')
    os.makedirs(work_dir, exist_ok=True)
    try:
        cfg = build_overfit_config(
            args.config, args.data_root, work_dir, args.epochs,
            args.eval_interval, args.train_input_size, args.square_crop,
            args.lr, args.seed, args.cfg_options)
    except FileNotFoundError as err:
        sys.exit(str(err))

    print(f'[overfit] {args.epochs} epochs x 2 iterations, evaluation every '
          f'{args.eval_interval} epochs; work dir {work_dir}', flush=True)
    result = run_overfit(cfg, args.verbose)
    print()
    print(result.table())
    print(f'\n[overfit] {result.seconds:.0f} s in total ({args.epochs} '
          f'epochs, {len(result.rows)} evaluations); full log: '
          f'{result.log_file}')
    ok, verdict = result.verdict(args.min_ap)
    print(f'[overfit] {verdict}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
