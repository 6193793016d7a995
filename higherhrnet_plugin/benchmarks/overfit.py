"""The overfit check of ``tools/overfit_benchmark.py``: a model trained on a
few real images without augmentation, its loss and COCO AP on the same
images before training and every few epochs.

A sanity check of the whole training and evaluation path (see
docs/training.md): :func:`build_overfit_config` turns a config into the
run (no augmentation, every split on the same images, flip test off),
:func:`run_overfit` trains it with an :class:`OverfitRecorder` and returns
an :class:`OverfitResult`, whose :meth:`~OverfitResult.table` and
:meth:`~OverfitResult.verdict` the tool prints.
"""
import math
import os.path as osp
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, TextIO, Tuple

from mmengine.config import Config
from mmengine.hooks import Hook

from ..utils import console_to_file

LOSS_KEYS = ('loss_heatmap_0', 'loss_heatmap_1', 'loss_pull_0', 'loss_push_0')
METRIC_KEYS = ('coco/AP', 'coco/AP .5', 'coco/AR')
#: An evaluation: (epoch, mean losses of that epoch, metrics).
Row = Tuple[int, Dict[str, float], Dict[str, float]]


def _fmt(value, spec):
    return '-' if value is None else format(value, spec)


def build_overfit_config(config: str,
                         data_root: str,
                         work_dir: str,
                         epochs: int = 200,
                         eval_interval: int = 50,
                         train_input_size: Sequence[int] = (448, 256),
                         square_crop: bool = False,
                         lr: Optional[float] = None,
                         seed: int = 0,
                         cfg_options: Optional[dict] = None) -> Config:
    """The config of the overfit run.

    Args:
        config (str): the model's config file.
        data_root (str): a folder with ``test_coco.json`` and its images;
            training, validation and test all use them.
        work_dir (str): logs and the final checkpoint.
        epochs (int): training epochs.
        eval_interval (int): evaluate every this many epochs (and, through
            :class:`OverfitRecorder`, before training).
        train_input_size (tuple): training input (w, h), multiples of 32;
            the whole image is fitted in it.
        square_crop (bool): train on the config's square input (the centre
            crop of the short side) instead.
        lr (float, optional): the optimiser's learning rate (default: the
            config's).
        seed (int): the random seed.
        cfg_options (dict, optional): further overrides, merged last.

    Raises:
        FileNotFoundError: if ``data_root`` has no ``test_coco.json``.
    """
    cfg = Config.fromfile(config)
    data_root = osp.join(osp.abspath(data_root), '')
    ann_file = osp.join(data_root, 'test_coco.json')
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'{ann_file} not found: pass --data-root')

    # No augmentation: BottomupRandomAffine with every random factor and
    # probability at 0, no flip. By default the training input is the
    # test-time view: the whole image, its height scaled to the config's
    # input size (as HigherHRNetResize scales the short side at test time),
    # padded to a common width so images batch. With square_crop it is
    # the config's square input (short side -> input size, centre crop),
    # which leaves the people near the sides of landscape images out of
    # training.
    codec = dict(cfg.codec)
    if not square_crop:
        width, height = train_input_size
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
            scale_type='short' if square_crop else 'long',
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
        by_epoch=True, max_epochs=epochs, val_interval=eval_interval)
    if lr is not None:
        cfg.optim_wrapper.optimizer.lr = lr
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    cfg.default_hooks.logger.interval = 10
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook',
        interval=epochs,
        max_keep_ckpts=1,
        save_last=True)
    cfg.default_hooks.visualization = dict(
        type='PoseVisualizationHook', enable=False)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


class OverfitRecorder(Hook):
    """Collects the mean losses of every epoch and the metrics of every
    evaluation, evaluates before training (epoch 0) and prints a line per
    evaluation to ``console``.

    Attributes:
        losses (dict): epoch -> {loss key: mean over the epoch's
            iterations}.
        first_iter (dict): the losses of the very first iteration (the
            untrained model on the first batch).
        metrics (dict): epoch -> metrics of the evaluation after it.
    """
    priority = 'LOW'

    def __init__(self, console: TextIO):
        self.console = console
        self.losses: Dict[int, Dict[str, float]] = {}
        self.first_iter: Optional[Dict[str, float]] = None
        self.metrics: Dict[int, Dict[str, float]] = {}
        self._sums = defaultdict(float)
        self._count = 0
        self._start = time.time()
        self._val_start = time.time()

    def before_train(self, runner) -> None:
        runner.val_loop.run()

    def before_val(self, runner) -> None:
        self._val_start = time.time()

    def before_train_epoch(self, runner) -> None:
        self._sums.clear()
        self._count = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        values = {k: float(v) for k, v in outputs.items()}
        if self.first_iter is None:
            self.first_iter = values
        for k, v in values.items():
            self._sums[k] += v
        self._count += 1

    def after_train_epoch(self, runner) -> None:
        self.losses[runner.epoch + 1] = {
            k: v / self._count
            for k, v in self._sums.items()
        }

    def after_val_epoch(self, runner, metrics=None) -> None:
        epoch = runner.epoch
        self.metrics[epoch] = dict(metrics or {})
        loss = self.losses.get(epoch, {}).get('loss')
        ap = self.metrics[epoch].get('coco/AP')
        print(
            f'[overfit] epoch {epoch:4d}  loss {_fmt(loss, ".4e")}  '
            f'coco/AP {_fmt(ap, ".4f")}  '
            f'(evaluation {time.time() - self._val_start:.1f} s,'
            f' {time.time() - self._start:.0f} s in total)',
            file=self.console,
            flush=True)

    def rows(self) -> List[Row]:
        """One per evaluation, in epoch order (epoch 0: the losses of the
        first iteration)."""
        rows = []
        for epoch in sorted(self.metrics):
            losses = (self.first_iter or {}) if epoch == 0 else \
                self.losses.get(epoch, {})
            rows.append((epoch, losses, self.metrics[epoch]))
        return rows


@dataclass
class OverfitResult:
    """What an overfit run recorded, how long it took and where its full
    log is."""
    recorder: OverfitRecorder
    seconds: float
    log_file: str

    @property
    def rows(self) -> List[Row]:
        return self.recorder.rows()

    def table(self) -> str:
        """The evaluations as a Markdown table: epoch, losses, metrics."""
        header = ['epoch', 'loss', *LOSS_KEYS, *METRIC_KEYS]
        lines = ['| ' + ' | '.join(header) + ' |',
                 '|' + '|'.join(['---:'] * len(header)) + '|']
        for epoch, losses, metrics in self.rows:
            cells = [str(epoch)]
            cells += [_fmt(losses.get(k), '.3e') for k in ('loss', *LOSS_KEYS)]
            cells += [_fmt(metrics.get(k), '.3f') for k in METRIC_KEYS]
            lines.append('| ' + ' | '.join(cells) + ' |')
        return '\n'.join(lines)

    def verdict(self, min_ap: float = 0.0) -> Tuple[bool, str]:
        """Whether the model overfits: the epoch-mean loss fell (last epoch
        below the first; whole epochs see every image once) and the final
        ``coco/AP`` is above ``min_ap``; and a line that says why."""
        losses, rows = self.recorder.losses, self.rows
        first_loss = losses.get(1, {}).get('loss', math.nan)
        last_loss = losses[max(losses)]['loss'] if losses else math.nan
        final_ap = rows[-1][2].get('coco/AP', math.nan) if rows else math.nan
        failures = []
        if not last_loss < first_loss:
            failures.append(f'loss did not fall: epoch 1 {first_loss:.4e}, '
                            f'last epoch {last_loss:.4e}')
        if not final_ap > min_ap:
            failures.append(f'final coco/AP {final_ap:.4f} is not above '
                            f'{min_ap}')
        if failures:
            return False, 'FAILED: ' + '; '.join(failures)
        first_ap = rows[0][2].get('coco/AP', math.nan)
        return True, (f'OK: epoch-mean loss {first_loss:.4e} -> '
                      f'{last_loss:.4e}, coco/AP {first_ap:.3f} -> '
                      f'{final_ap:.3f}')


def run_overfit(cfg: Config,
                verbose: bool = False,
                console: Optional[TextIO] = None) -> OverfitResult:
    """Train ``cfg`` (from :func:`build_overfit_config`) with an
    :class:`OverfitRecorder`.

    Args:
        cfg (Config): the run; its ``work_dir`` must exist.
        verbose (bool): let MMEngine's log and the COCO evaluation print to
            the console; by default they go to
            ``<work_dir>/overfit_console.log`` (at level WARNING) and only
            the recorder's lines are shown.
        console (TextIO, optional): where the recorder prints (default:
            ``sys.stdout`` as it is when called).
    """
    from mmengine.runner import Runner
    from mmpose.utils import register_all_modules
    register_all_modules()
    console = console or sys.stdout
    log_file = osp.join(cfg.work_dir, 'overfit_console.log')
    start = time.time()
    recorder = OverfitRecorder(console)
    with console_to_file(log_file, enabled=not verbose):
        if not verbose:
            cfg.log_level = 'WARNING'
        runner = Runner.from_cfg(cfg)
        runner.register_hook(recorder)
        runner.train()
    return OverfitResult(recorder, time.time() - start, log_file)
