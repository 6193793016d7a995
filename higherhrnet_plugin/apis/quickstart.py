"""The quick start: train a small HigherHRNet in minutes on a CPU, evaluate
it with ``CocoMetric`` on held-out images through MMEngine's validation
loop, and draw a prediction and the learning curve.

Data, first match wins (``source='auto'``):

1. real COCO in ``data/coco`` (``annotations/person_keypoints_val2017.json``
   and ``val2017/``): disjoint train / validation subsets of val2017;
2. the four real COCO images of ``../shared/data/coco`` (too few to hold any
   out: the model is evaluated on the images it trained on, and the summary
   says so);
3. the synthetic people of :mod:`higherhrnet_plugin.datasets.synthetic_coco`,
   generated into ``data/synthetic_coco`` (train and validation splits of
   one seed).
"""
import contextlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, TextIO, Tuple

from mmengine.hooks import Hook

#: Annotation file and image folder of one split.
Split = Tuple[Path, Path]
SOURCES = ('auto', 'coco', 'shared', 'synthetic')
#: Images of the synthetic splits (the config's epochs are counted on them).
TRAIN_IMAGES = 200
VAL_IMAGES = 48


@dataclass
class QuickstartData:
    """The quick start's data: where it is and how to describe it."""
    description: str
    train: Split
    val: Split
    synthetic: bool
    held_out: bool  # False: the validation images are the training images

    def num_images(self, split: str) -> int:
        ann_file = getattr(self, split)[0]
        return len(json.loads(Path(ann_file).read_text())['images'])


def _coco_subset(ann_file: Path, first: int, count: int,
                 out_file: Path) -> Path:
    """Write images ``first`` .. ``first + count - 1`` of a COCO file (and
    their annotations) to ``out_file``."""
    data = json.loads(ann_file.read_text())
    data['images'] = data['images'][first:first + count]
    keep = {img['id'] for img in data['images']}
    data['annotations'] = [
        a for a in data['annotations'] if a['image_id'] in keep
    ]
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(data))
    return out_file


def prepare_data(repo: Path,
                 work_dir: Path,
                 source: str = 'auto',
                 num_train: int = TRAIN_IMAGES,
                 num_val: int = VAL_IMAGES,
                 seed: int = 0,
                 shared_root: Optional[Path] = None,
                 synthetic_dir: Optional[Path] = None) -> QuickstartData:
    """Find or generate the quick start's data (see the module docstring).

    Args:
        repo: the repository root (``data/`` is under it).
        work_dir: where COCO subsets are written.
        source: ``'auto'`` (first match), ``'coco'``, ``'shared'`` or
            ``'synthetic'``.
        num_train, num_val: images per split (synthetic data, COCO subsets).
        seed: seed of the synthetic data.
        shared_root: the ``../shared`` folder (default: beside ``repo``).
        synthetic_dir: where the synthetic data is generated (default:
            ``data/synthetic_coco`` under ``repo``); an existing set made
            with the same settings is reused.

    Raises:
        FileNotFoundError: if the requested real data is missing.
    """
    if source not in SOURCES:
        raise ValueError(f'data source must be one of {SOURCES}, got '
                         f'{source!r}')
    coco = repo / 'data' / 'coco'
    coco_ann = coco / 'annotations' / 'person_keypoints_val2017.json'
    shared = (shared_root or repo.parent / 'shared') / 'data' / 'coco'
    shared_ann = shared / 'test_coco.json'
    if source == 'coco' or (source == 'auto' and coco_ann.is_file()
                            and (coco / 'val2017').is_dir()):
        if not coco_ann.is_file():
            raise FileNotFoundError(f'{coco_ann} not found (data source '
                                    "'coco')")
        train = _coco_subset(coco_ann, 0, num_train,
                             work_dir / 'coco_subset_train.json')
        val = _coco_subset(coco_ann, num_train, num_val,
                           work_dir / 'coco_subset_val.json')
        return QuickstartData(
            f'real COCO val2017 in {coco}: images 1-{num_train} for '
            f'training, the next {num_val} held out', (train, coco /
                                                       'val2017'),
            (val, coco / 'val2017'), synthetic=False, held_out=True)
    if source == 'shared' or (source == 'auto' and shared_ann.is_file()):
        if not shared_ann.is_file():
            raise FileNotFoundError(f'{shared_ann} not found (data source '
                                    "'shared')")
        split = (shared_ann, shared)
        return QuickstartData(
            f'the 4 real COCO images of {shared} (evaluated on the same '
            'images: too few to hold any out)', split, split,
            synthetic=False, held_out=False)
    from higherhrnet_plugin.datasets.synthetic_coco import \
        make_synthetic_coco_splits
    out_dir = synthetic_dir or repo / 'data' / 'synthetic_coco'
    splits = make_synthetic_coco_splits(out_dir, num_train, num_val, seed)
    return QuickstartData(
        f'synthetic people in {out_dir} ({num_train} training images, '
        f'{num_val} held-out validation images, seed {seed})',
        splits['train'], splits['val'], synthetic=True, held_out=True)


def build_config(config: Path,
                 data: QuickstartData,
                 work_dir: Path,
                 max_iters: Optional[int] = None,
                 cfg_options: Optional[dict] = None):
    """The quick-start config pointed at ``data``.

    Args:
        config: the quick-start config file.
        data: from :func:`prepare_data`.
        work_dir: the run's work dir.
        max_iters: shorten (or lengthen) the run to about this many
            iterations (whole epochs; the LR schedule and the validations
            follow). None: the config's epochs on the synthetic data, the same
            number of iterations (the config's epochs of
            :data:`TRAIN_IMAGES` images) on real data.
        cfg_options: further overrides, as ``--cfg-options`` gives them.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(str(config))
    for loader, (ann_file, img_dir) in (('train_dataloader', data.train),
                                        ('val_dataloader', data.val),
                                        ('test_dataloader', data.val)):
        cfg[loader].dataset.update(
            data_root='',
            ann_file=str(ann_file),
            data_prefix=dict(img=str(img_dir) + '/'))
    cfg.val_evaluator.ann_file = str(data.val[0])
    cfg.test_evaluator.ann_file = str(data.val[0])
    if not data.synthetic:
        # Real people carry no side marks: flipping is a valid augmentation
        # again (the synthetic config leaves it out, see the config).
        pipeline = cfg.train_dataloader.dataset.pipeline
        affine = next(i for i, t in enumerate(pipeline)
                      if t['type'] == 'BottomupRandomAffine')
        pipeline.insert(affine + 1,
                        dict(type='RandomFlip', direction='horizontal'))
    iters_per_epoch = math.ceil(
        data.num_images('train') / cfg.train_dataloader.batch_size)
    if max_iters is None and not data.synthetic:
        max_iters = cfg.train_cfg.max_epochs * math.ceil(
            TRAIN_IMAGES / cfg.train_dataloader.batch_size)
    if max_iters is not None:
        _set_epochs(cfg, max(1, round(max_iters / iters_per_epoch)))
    cfg.work_dir = str(work_dir)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _set_epochs(cfg, epochs: int) -> None:
    """Train for ``epochs``, keeping the number of validations and the
    shape of the LR schedule (epoch-based schedulers end at the last
    epoch)."""
    validations = max(1, cfg.train_cfg.max_epochs // cfg.train_cfg.val_interval)
    cfg.train_cfg.max_epochs = epochs
    interval = max(1, epochs // validations)
    cfg.train_cfg.val_interval = interval
    for scheduler in cfg.param_scheduler:
        if scheduler.get('by_epoch', True):
            scheduler.end = epochs
            if 'T_max' in scheduler:
                scheduler.T_max = epochs
    cfg.default_hooks.checkpoint.interval = epochs


class ProgressHook(Hook):
    """Prints a line every ``interval`` iterations (losses, elapsed time and
    an estimate of the time left) and the metrics of every validation.

    ``history`` keeps ``(epoch, metrics)`` of every validation.
    """
    priority = 'LOW'

    def __init__(self, console: TextIO, interval: int = 10):
        self.console = console
        self.interval = interval
        self.history: List[Tuple[int, Dict[str, float]]] = []
        self.train_seconds = 0.0
        self.val_seconds = 0.0
        self._start = self._val_start = time.time()

    def _print(self, text: str) -> None:
        print(f'[quickstart] {text}', file=self.console, flush=True)

    def before_train(self, runner) -> None:
        self._start = time.time()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        done, total = runner.iter + 1, runner.max_iters
        if done % self.interval and done != total:
            return
        elapsed = time.time() - self._start - self.val_seconds
        left = elapsed / done * (total - done)
        losses = {k: float(v) for k, v in (outputs or {}).items()}
        self._print(
            f'epoch {runner.epoch + 1}/{runner.max_epochs} '
            f'iter {done}/{total}  loss {losses.get("loss", math.nan):.2e} '
            f'(heatmaps {losses.get("loss_heatmap_0", math.nan):.1e} '
            f'{losses.get("loss_heatmap_1", math.nan):.1e}, '
            f'pull {losses.get("loss_pull_0", math.nan):.1e}, '
            f'push {losses.get("loss_push_0", math.nan):.1e})  '
            f'{elapsed:.0f} s, about {left:.0f} s of training left')

    def before_val(self, runner) -> None:
        self._val_start = time.time()

    def after_val_epoch(self, runner, metrics=None) -> None:
        metrics = dict(metrics or {})
        self.history.append((runner.epoch, metrics))
        seconds = time.time() - self._val_start
        self.val_seconds += seconds
        self._print(f'validation after epoch {runner.epoch}: COCO AP '
                    f'{metrics.get("coco/AP", math.nan):.3f}, AR '
                    f'{metrics.get("coco/AR", math.nan):.3f} ({seconds:.0f} s)')

    def after_train(self, runner) -> None:
        self.train_seconds = time.time() - self._start - self.val_seconds


def choose_picture_images(data: QuickstartData, count: int = 3) -> List[Path]:
    """Validation images for the picture: of the first 12, the ``count``
    with the most annotated people (in file order)."""
    coco = json.loads(Path(data.val[0]).read_text())
    images = coco['images'][:12]
    people = {img['id']: 0 for img in images}
    for ann in coco['annotations']:
        if ann['image_id'] in people and ann.get('num_keypoints', 0) > 0 \
                and not ann.get('iscrowd', 0):
            people[ann['image_id']] += 1
    chosen = sorted(images, key=lambda img: -people[img['id']])[:count]
    return [
        Path(data.val[1]) / img['file_name']
        for img in images if img in chosen
    ]


def draw_predictions(cfg, checkpoint: str, images: List[Path],
                     out_file: Path, scale: float = 2.0) -> List[int]:
    """Run MMPose's bottom-up inference on each image and draw the people
    it returns (those scoring at least ``model.test_cfg.score_thr``, as in
    the demo and the inferencer), each person in a colour of its own (a
    skeleton that strays onto another figure shows at a glance), the images
    side by side and enlarged ``scale`` times so that small images stay
    readable.

    Returns:
        list: the number of people drawn on each image.
    """
    import mmcv
    import numpy as np
    from mmpose.apis import inference_bottomup

    from .model import init_model
    from .visualization import PERSON_COLOURS, build_visualizer, \
        draw_prediction
    model = init_model(cfg, checkpoint)  # strict, weights only
    # lines and dots a little bolder than the default on the enlarged images
    visualizer = build_visualizer(model, radius=3, line_width=2)
    drawn, people = [], []
    for image in images:
        result = inference_bottomup(model, str(image))[0]
        drawn.append(
            draw_prediction(visualizer, mmcv.imread(str(image)), result,
                            scale=scale, person_colours=PERSON_COLOURS))
        people.append(len(result.pred_instances))
    height = max(d.shape[0] for d in drawn)
    gap = np.full((height, 8, 3), 255, np.uint8)
    row = [mmcv.impad(d, shape=(height, d.shape[1]), pad_val=255)
           for d in drawn]
    canvas = np.concatenate([x for d in row for x in (d, gap)][:-1], axis=1)
    mmcv.imwrite(canvas, str(out_file))
    return people


@dataclass
class QuickstartResult:
    """What the summary reports."""
    data: QuickstartData
    config: Path
    work_dir: Path
    epochs: int
    iterations: int
    batch_size: int
    data_seconds: float  # from the start to the data being ready
    train_seconds: float
    val_seconds: float
    picture_seconds: float
    total_seconds: float
    cpu_seconds: float  # the process's CPU time, all threads
    metrics: Dict[str, float]
    checkpoint: Path
    prediction: Path
    people_drawn: List[int]
    picture_images: List[Path]
    learning_curve: Path
    log_file: Path


def run_quickstart(config: Path,
                   data: QuickstartData,
                   work_dir: Path,
                   max_iters: Optional[int] = None,
                   cfg_options: Optional[dict] = None,
                   verbose: bool = False,
                   console: TextIO = sys.stdout,
                   started: Optional[float] = None) -> QuickstartResult:
    """Train, validate (every ``val_interval`` epochs and after the last),
    draw the prediction and the learning curve.

    Args:
        started: ``time.time()`` when the quick start began, before the
            imports and the data preparation; default now.
    """
    from mmengine.runner import Runner
    from higherhrnet_plugin.visualization import plot_learning_curve
    data_ready = time.time()
    started = data_ready if started is None else started
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg = build_config(config, data, work_dir, max_iters, cfg_options)
    progress = ProgressHook(console)
    log_file = work_dir / 'quickstart.log'
    with open(log_file, 'w') as log, contextlib.ExitStack() as stack:
        if not verbose:
            # MMEngine's logger (its console handler is made inside, so it
            # writes here too) and the COCO evaluation print a lot: keep it
            # in the work dir, show progress lines only
            stack.enter_context(contextlib.redirect_stdout(log))
            stack.enter_context(contextlib.redirect_stderr(log))
        runner = Runner.from_cfg(cfg)
        runner.register_hook(progress)
        runner.train()
        pictures_start = time.time()
        epochs = cfg.train_cfg.max_epochs
        checkpoint = work_dir / f'epoch_{epochs}.pth'
        picture_images = choose_picture_images(data)
        prediction = work_dir / 'prediction.png'
        people = draw_predictions(cfg, str(checkpoint), picture_images,
                                  prediction)
        scalars = Path(runner.log_dir) / 'vis_data' / 'scalars.json'
        curve = plot_learning_curve(
            scalars, work_dir / 'learning_curve.png',
            title=f'quick start: {Path(config).stem}')
    picture_seconds = time.time() - pictures_start
    metrics = progress.history[-1][1] if progress.history else {}
    return QuickstartResult(
        data=data,
        config=Path(config),
        work_dir=work_dir,
        epochs=epochs,
        iterations=runner.iter,
        batch_size=cfg.train_dataloader.batch_size,
        data_seconds=data_ready - started,
        train_seconds=progress.train_seconds,
        val_seconds=progress.val_seconds,
        picture_seconds=picture_seconds,
        total_seconds=time.time() - started,
        cpu_seconds=time.process_time(),
        metrics=metrics,
        checkpoint=checkpoint,
        prediction=prediction,
        people_drawn=people,
        picture_images=picture_images,
        learning_curve=curve,
        log_file=log_file)


def format_summary(result: QuickstartResult) -> str:
    """The lines the quick start ends with."""
    m = result.metrics
    drawn = ', '.join(f'{n} on {p.name}' for n, p in zip(
        result.people_drawn, result.picture_images))
    where = ('held-out validation images' if result.data.held_out else
             'the training images')
    return '\n'.join([
        f'[quickstart] done in {result.total_seconds:.0f} s',
        f'  data       : {result.data.description}',
        f'  config     : {result.config}',
        f'  training   : {result.epochs} epoch(s), {result.iterations} '
        f'iterations of batch {result.batch_size}',
        f'  evaluation : COCO AP {m.get("coco/AP", math.nan):.3f}  '
        f'AP .5 {m.get("coco/AP .5", math.nan):.3f}  '
        f'AR {m.get("coco/AR", math.nan):.3f}  on '
        f'{result.data.num_images("val")} {where} (CocoMetric)',
        f'  checkpoint : {result.checkpoint}',
        f'  prediction : {result.prediction} (people drawn: {drawn})',
        f'  curve      : {result.learning_curve}',
        f'  log        : {result.log_file}',
        f'  time       : {result.total_seconds:.0f} s = start-up and data '
        f'{result.data_seconds:.0f} s + training {result.train_seconds:.0f} s'
        f' + validation {result.val_seconds:.0f} s + pictures '
        f'{result.picture_seconds:.0f} s (+ building the runner); CPU '
        f'{result.cpu_seconds:.0f} s over {torch_threads()} thread(s)',
    ])


def torch_threads() -> int:
    import torch
    return torch.get_num_threads()
