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
import contextlib
import math
import os
import os.path as osp
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = (REPO / 'configs' / 'higherhrnet' / 'coco' /
               'higherhrnet_hrnet-tiny_1xb2-30e_coco-256x256.py')
DEFAULT_DATA_ROOT = REPO.parent / 'shared' / 'data' / 'coco'
LOSS_KEYS = ('loss_heatmap_0', 'loss_heatmap_1', 'loss_pull_0', 'loss_push_0')
METRIC_KEYS = ('coco/AP', 'coco/AP .5', 'coco/AR')


def parse_args():
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
        default=[],
        help='extra key=value overrides, as in tools/train.py')
    return parser.parse_args()


def build_cfg(args, work_dir: str):
    from mmengine.config import Config, DictAction

    cfg = Config.fromfile(args.config)
    data_root = osp.join(osp.abspath(args.data_root), '')
    ann_file = osp.join(data_root, 'test_coco.json')
    if not osp.isfile(ann_file):
        sys.exit(f'{ann_file} not found: pass --data-root')

    # No augmentation: BottomupRandomAffine with every random factor and
    # probability at 0, no flip. By default the training input is the
    # test-time view: the whole image, its height scaled to the config's
    # input size (as HigherHRNetResize scales the short side at test time),
    # padded to a common width so images batch. With --square-crop it is
    # the config's square input (short side -> input size, centre crop),
    # which leaves the people near the sides of these landscape images out
    # of training.
    codec = dict(cfg.codec)
    if not args.square_crop:
        width, height = args.train_input_size
        codec.update(
            input_size=(width, height),
            heatmap_sizes=[(width // 4, height // 4),
                           (width // 2, height // 2)])
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='LoadImage'),
        dict(
            type='BottomupRandomAffine',
            input_size=tuple(codec['input_size']),
            shift_factor=0.,
            shift_prob=0.,
            scale_factor=(1., 1.),
            scale_prob=0.,
            scale_type='short' if args.square_crop else 'long',
            rotate_factor=0.,
            rotate_prob=0.,
            shear_factor=0.,
            shear_prob=0.),
        dict(type='GenerateTarget', encoder=codec),
        dict(type='PackPoseInputs'),
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    cfg.val_evaluator.ann_file = ann_file
    cfg.test_evaluator.ann_file = ann_file
    cfg.model.test_cfg.flip_test = False

    cfg.train_cfg = dict(
        by_epoch=True,
        max_epochs=args.epochs,
        val_interval=args.eval_interval)
    if args.lr is not None:
        cfg.optim_wrapper.optimizer.lr = args.lr
    cfg.randomness = dict(seed=args.seed)
    cfg.work_dir = work_dir
    cfg.default_hooks.logger.interval = 10
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook',
        interval=args.epochs,
        max_keep_ckpts=1,
        save_last=True)
    cfg.default_hooks.visualization = dict(
        type='PoseVisualizationHook', enable=False)
    if args.cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        options = parser.parse_args(['--cfg-options', *args.cfg_options])
        cfg.merge_from_dict(options.cfg_options)
    return cfg


class Recorder:
    """Collects per-epoch mean losses and the metrics of every evaluation
    (registered as an MMEngine hook; ``before_train`` evaluates epoch 0)."""

    def __init__(self, console):
        from mmengine.hooks import Hook

        recorder = self
        self.console = console
        self.losses = {}  # epoch -> {key: mean}
        self.first_iter = None  # losses of the very first iteration
        self.metrics = {}  # epoch -> metrics
        self._sums = defaultdict(float)
        self._count = 0
        self._start = time.time()
        self._val_start = time.time()

        class _Hook(Hook):
            priority = 'LOW'

            def before_train(self, runner):
                runner.val_loop.run()

            def before_val(self, runner):
                recorder._val_start = time.time()

            def before_train_epoch(self, runner):
                recorder._sums.clear()
                recorder._count = 0

            def after_train_iter(self,
                                 runner,
                                 batch_idx,
                                 data_batch=None,
                                 outputs=None):
                values = {k: float(v) for k, v in outputs.items()}
                if recorder.first_iter is None:
                    recorder.first_iter = values
                for k, v in values.items():
                    recorder._sums[k] += v
                recorder._count += 1

            def after_train_epoch(self, runner):
                recorder.losses[runner.epoch + 1] = {
                    k: v / recorder._count
                    for k, v in recorder._sums.items()
                }

            def after_val_epoch(self, runner, metrics=None):
                epoch = runner.epoch
                recorder.metrics[epoch] = dict(metrics or {})
                loss = recorder.losses.get(epoch, {}).get('loss')
                ap = recorder.metrics[epoch].get('coco/AP')
                print(
                    f'[overfit] epoch {epoch:4d}  loss {_fmt(loss, ".4e")}  '
                    f'coco/AP {_fmt(ap, ".4f")}  '
                    f'(evaluation {time.time() - recorder._val_start:.1f} s,'
                    f' {time.time() - recorder._start:.0f} s in total)',
                    file=recorder.console,
                    flush=True)

        self.hook = _Hook()

    def rows(self):
        rows = []
        for epoch in sorted(self.metrics):
            losses = (self.first_iter or {}) if epoch == 0 else \
                self.losses.get(epoch, {})
            rows.append((epoch, losses, self.metrics[epoch]))
        return rows


def format_table(rows) -> str:
    header = ['epoch', 'loss', *LOSS_KEYS, *METRIC_KEYS]
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join(['---:'] * len(header)) + '|']
    for epoch, losses, metrics in rows:
        cells = [str(epoch)]
        cells += [_fmt(losses.get(k), '.3e') for k in ('loss', *LOSS_KEYS)]
        cells += [_fmt(metrics.get(k), '.3f') for k in METRIC_KEYS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _fmt(value, spec):
    return '-' if value is None else format(value, spec)


def main():
    args = parse_args()
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    sys.path.insert(0, str(REPO))  # the plugin, if it is not installed

    import higherhrnet_plugin  # noqa: F401  (shims, registers modules)
    from mmengine.runner import Runner
    from mmpose.utils import register_all_modules

    register_all_modules()
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='overfit_')
    os.makedirs(work_dir, exist_ok=True)
    cfg = build_cfg(args, work_dir)

    console = sys.stdout
    log_path = osp.join(work_dir, 'overfit_console.log')
    print(f'[overfit] {args.epochs} epochs x 2 iterations, evaluation every '
          f'{args.eval_interval} epochs; work dir {work_dir}', flush=True)
    start = time.time()
    recorder = Recorder(console)
    with open(log_path, 'w') as log, contextlib.ExitStack() as stack:
        if not args.verbose:
            # MMEngine's console logger and pycocotools print a lot; keep it
            # in the work dir and show only the summary here.
            stack.enter_context(contextlib.redirect_stdout(log))
            stack.enter_context(contextlib.redirect_stderr(log))
            cfg.log_level = 'WARNING'
        runner = Runner.from_cfg(cfg)
        runner.register_hook(recorder.hook)
        runner.train()
    elapsed = time.time() - start

    rows = recorder.rows()
    print()
    print(format_table(rows))
    print(f'\n[overfit] {elapsed:.0f} s in total ({args.epochs} epochs, '
          f'{len(rows)} evaluations); full log: {log_path}')

    # Whole epochs are compared (each sees all 4 images once).
    first_loss = recorder.losses.get(1, {}).get('loss', math.nan)
    last_loss = recorder.losses[max(recorder.losses)]['loss'] \
        if recorder.losses else math.nan
    final_ap = rows[-1][2].get('coco/AP', math.nan) if rows else math.nan
    failures = []
    if not last_loss < first_loss:
        failures.append(f'loss did not fall: epoch 1 {first_loss:.4e}, '
                        f'last epoch {last_loss:.4e}')
    if not final_ap > args.min_ap:
        failures.append(f'final coco/AP {final_ap:.4f} is not above '
                        f'{args.min_ap}')
    if failures:
        print('[overfit] FAILED: ' + '; '.join(failures))
        return 1
    print(f'[overfit] OK: epoch-mean loss {first_loss:.4e} -> '
          f'{last_loss:.4e}, coco/AP {rows[0][2].get("coco/AP", math.nan):.3f} -> '
          f'{final_ap:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
