"""HigherHRNet beside MMPose's other bottom-up models, on this machine.

:func:`compare_models` measures every model at the input size of its own
test pipeline (see docs/benchmark.md for the definitions):

* parameters and GFLOPs (MMEngine's ``FlopAnalyzer``, fvcore-style: one
  multiply-add counts as one flop), at the native square input size;
* forward latency: the network only (``model(inputs, None, mode='tensor')``)
  on the preprocessed real images;
* decode latency, without and with flip test: everything ``model.predict``
  does beyond the network (time in ``predict`` minus time in
  ``extract_feat`` and ``head.forward`` within the same call, by
  :class:`~higherhrnet_plugin.benchmarks.stage_timer.StageTimer`);
* end-to-end latency per image, without and with flip test:
  ``mmpose.apis.inference_bottomup`` on a decoded image;
* peak memory of one ``inference_bottomup`` call, in a fresh process per
  model (:mod:`.memory_probe`);
* COCO AP through the config's test loop, for models with a checkpoint.

Latencies are medians over the passes over the images, measured
round-robin (model A, B, C, A, B, C, ...) so that load changes on the
machine hit all models alike. A model that cannot be built or run here
(e.g. ops of full mmcv under mmcv-lite) is reported with the reason and the
others go on. Weights are random unless a checkpoint is given.

Progress goes to stderr (``[benchmark] ...``).
"""
import os
import statistics
import sys
import time
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmcv import imread
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.runner import Runner
from mmpose.apis import inference_bottomup

from ..apis import init_model, network_inputs
from .stage_timer import StageTimer
from ..utils import describe_error
from .memory_probe import measure_peak_memory

#: Characters of an error message kept in the table.
REASON_CHARS = 200


def log(message: str) -> None:
    print(f'[benchmark] {message}', file=sys.stderr, flush=True)


def describe(exc: BaseException) -> str:
    """An error as a table cell: type and (the start of) its first line."""
    return describe_error(exc, REASON_CHARS)


# --------------------------------------------------------------------------
# models and configs


@dataclass
class ModelSpec:
    """A model to benchmark: its name in the table, its config (a path, or
    ``mmpose::<path under MMPose's configs>``) and optional weights."""
    name: str
    config: str
    checkpoint: Optional[str] = None


def parse_pairs(items: List[str], what: str) -> Dict[str, str]:
    """``['NAME=VALUE', ...]`` -> ``{NAME: VALUE}``.

    Raises:
        ValueError: naming ``what`` (e.g. the option) and the bad item.
    """
    pairs = {}
    for item in items:
        name, sep, value = item.partition('=')
        if not sep or not name or not value:
            raise ValueError(f'{what} expects NAME=VALUE, got {item!r}')
        pairs[name] = value
    return pairs


def resolve_specs(models: List[str], checkpoints: List[str],
                  known: Dict[str, Tuple[str, str]]) -> List[ModelSpec]:
    """Model keys and NAME=CONFIG pairs -> specs with their checkpoints.

    Args:
        models (list[str]): keys of ``known`` and/or ``NAME=CONFIG`` pairs.
        checkpoints (list[str]): ``NAME=PATH`` pairs, NAME a key or a name.
        known (dict): key -> (name, config) of the models one can choose by
            key.

    Raises:
        ValueError: an unknown key, or a checkpoint for no model.
    """
    weights = parse_pairs(checkpoints, '--checkpoint')
    specs = []
    for item in models:
        if item in known:
            name, config = known[item]
            path = weights.pop(item, None)
        elif '=' in item:
            name, config = item.split('=', 1)
            path = None
        else:
            raise ValueError(f'unknown model {item!r}; keys: '
                             f'{", ".join(known)} or NAME=CONFIG')
        specs.append(ModelSpec(name, config, weights.pop(name, path)))
    if weights:
        raise ValueError(f'--checkpoint for unknown models: {sorted(weights)}')
    return specs


def drop_url_init_cfgs(node) -> None:
    """Set every ``init_cfg`` that would download weights to None."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'init_cfg' and '://' in str(value):
                node[key] = None
            else:
                drop_url_init_cfgs(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            drop_url_init_cfgs(value)


def load_config(spec: ModelSpec) -> Config:
    """The spec's config (``package::path`` through MMEngine's
    ``get_config``), without weight downloads."""
    if '::' in spec.config:
        cfg = get_config(spec.config)
    else:
        cfg = Config.fromfile(spec.config)
    drop_url_init_cfgs(cfg.model)
    return cfg


def build_model(spec: ModelSpec):
    """The plugin's strict ``init_model`` on CPU; random weights unless the
    spec has a checkpoint (PyTorch's default init, no ``init_weights``)."""
    torch.manual_seed(0)
    return init_model(load_config(spec), spec.checkpoint)


def native_input_size(model) -> tuple:
    """(w, h), the nominal input size: that of the config's ``codec`` (or
    else of the head's decoder)."""
    codec = model.cfg.get('codec') or model.cfg.model.head.get('decoder')
    return tuple(codec['input_size'])


def load_images(folder: Path) -> Dict[str, np.ndarray]:
    """The images of ``folder`` by file name, BGR, in name order.

    Raises:
        FileNotFoundError: if ``folder`` is missing.
        ValueError: if it holds no images.
    """
    from .throughput import image_files
    return {p.name: imread(str(p)) for p in image_files([folder])}


# --------------------------------------------------------------------------
# complexity


def count_params(model) -> int:
    return parameter_count(model)['']


def native_input(model, image: np.ndarray) -> torch.Tensor:
    """The preprocessed image resized to the native square input."""
    width, height = native_input_size(model)
    return F.interpolate(network_inputs(model, image), size=(height, width),
                         mode='bilinear', align_corners=False)


class NetworkForward(torch.nn.Module):
    """``model(inputs, None, mode='tensor')`` as a module of one input, the
    form MMEngine's ``FlopAnalyzer`` traces."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model(inputs, None, mode='tensor')


def count_gflops(model, inputs: torch.Tensor) -> tuple:
    """MMEngine's (fvcore-style) count of the network's forward, and the
    operators it could not count."""
    analyzer = FlopAnalyzer(NetworkForward(model), inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        total = analyzer.total()
    return total / 1e9, sorted(analyzer.unsupported_ops())


# --------------------------------------------------------------------------
# timing


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stage_hooks(model) -> dict:
    """What :class:`StageTimer` times of a pose estimator's ``predict``: the
    network (``extract_feat`` + ``head.forward``) and the whole call."""
    return {'network': [(model, 'extract_feat'), (model.head, 'forward')],
            'predict': [(model, 'predict')]}


@contextmanager
def flip_test(model, enabled: bool):
    saved = dict(model.test_cfg)
    model.test_cfg['flip_test'] = enabled
    try:
        yield
    finally:
        model.test_cfg.clear()
        model.test_cfg.update(saved)


def time_forward(model, inputs: torch.Tensor) -> dict:
    with torch.no_grad():
        return {'forward': timed(lambda: model(inputs, None, mode='tensor'))}


def time_end_to_end(model, image: np.ndarray, flip: bool) -> dict:
    """End-to-end seconds of ``inference_bottomup``, and its decode part."""
    suffix = '_flip' if flip else ''
    timer = StageTimer()
    with flip_test(model, flip), timer.hooked(stage_hooks(model)):
        total = timed(lambda: inference_bottomup(model, image))
    return {f'e2e{suffix}': total,
            f'decode{suffix}': timer.wall['predict'] - timer.wall['network']}


# mode -> fn(entry, image name, image) -> {sample key: seconds}
MODES = {
    'forward': lambda entry, name, image: time_forward(
        entry.model, entry.inputs[name]),
    'e2e': lambda entry, name, image: time_end_to_end(
        entry.model, image, flip=False),
    'e2e_flip': lambda entry, name, image: time_end_to_end(
        entry.model, image, flip=True),
}


# --------------------------------------------------------------------------
# results


@dataclass
class Row:
    """One model's line of the report (``status`` 'ok' or what failed)."""
    model: str
    config: str
    status: str = 'ok'
    reason: str = ''
    input_px: str = ''
    params_m: Optional[float] = None
    gflops: Optional[float] = None
    forward_ms: Optional[float] = None
    decode_ms: Optional[float] = None
    decode_flip_ms: Optional[float] = None
    e2e_ms: Optional[float] = None
    e2e_flip_ms: Optional[float] = None
    peak_rss_mb: Optional[float] = None
    rss_delta_mb: Optional[float] = None
    ap: Optional[float] = None
    uncounted_ops: str = ''
    notes: List[str] = field(default_factory=list)


@dataclass
class Entry:
    """A model under test, its samples and the modes it cannot run."""
    spec: ModelSpec
    row: Row
    model: object = None
    inputs: Dict[str, torch.Tensor] = field(default_factory=dict)
    samples: Dict[str, List[float]] = field(default_factory=dict)
    failed_modes: Dict[str, str] = field(default_factory=dict)

    @property
    def runnable(self) -> bool:
        return self.model is not None

    def fail(self, stage: str, exc: BaseException) -> None:
        self.row.status = f'{stage} failed'
        self.row.reason = describe(exc)
        self.model = None  # frees it; no further stages
        self.inputs.clear()


def median_ms(samples: List[float]) -> Optional[float]:
    return 1000 * statistics.median(samples) if samples else None


# --------------------------------------------------------------------------
# stages


def build_entries(specs: List[ModelSpec]) -> List[Entry]:
    entries = []
    for spec in specs:
        entry = Entry(spec, Row(spec.name, spec.config))
        log(f'building {spec.name}')
        try:
            entry.model = build_model(spec)
            entry.row.params_m = count_params(entry.model) / 1e6
        except Exception as exc:  # noqa: BLE001  (reported, not fatal)
            entry.fail('build', exc)
            log(f'  {entry.row.status}: {entry.row.reason}')
        entries.append(entry)
    return entries


def measure_complexity(entries: List[Entry], image: np.ndarray) -> None:
    for entry in filter(lambda e: e.runnable, entries):
        log(f'GFLOPs of {entry.spec.name}')
        try:
            gflops, uncounted = count_gflops(
                entry.model, native_input(entry.model, image))
            entry.row.gflops = gflops
            entry.row.uncounted_ops = ' '.join(uncounted)
        except Exception as exc:  # noqa: BLE001
            entry.row.notes.append(f'GFLOPs: {describe(exc)}')


def prepare_inputs(entries: List[Entry],
                   images: Dict[str, np.ndarray]) -> None:
    """Preprocess every image once per model (for the forward timing), and
    one untimed forward as warm-up: a model that cannot run fails here."""
    for entry in filter(lambda e: e.runnable, entries):
        log(f'preprocessing + warm-up forward of {entry.spec.name}')
        try:
            entry.inputs = {name: network_inputs(entry.model, image)
                            for name, image in images.items()}
            first = next(iter(images))
            MODES['forward'](entry, first, images[first])
        except Exception as exc:  # noqa: BLE001
            entry.fail('forward', exc)
            log(f'  {entry.row.status}: {entry.row.reason}')
            continue
        shapes = sorted({tuple(x.shape[-2:]) for x in entry.inputs.values()})
        entry.row.input_px = ', '.join(f'{h}x{w}' for h, w in shapes)


def measure_memory(entry: Entry, image_path: Path,
                   threads: Optional[int]) -> None:
    """Peak RSS of one inference, in a fresh process (:mod:`.memory_probe`);
    a failure becomes a note."""
    spec = entry.spec
    log(f'peak memory of {spec.name} (subprocess)')
    try:
        measured = measure_peak_memory(spec.config, image_path,
                                       spec.checkpoint, threads)
    except RuntimeError as err:
        entry.row.notes.append(f'memory: {err}')
        return
    for key, value in measured.items():
        setattr(entry.row, key, value)


def measure_once(entry: Entry, name: str, image: np.ndarray) -> None:
    """Every mode the model can still run, once, on one image."""
    for mode, run in MODES.items():
        if mode in entry.failed_modes or not entry.runnable:
            continue
        try:
            for key, seconds in run(entry, name, image).items():
                entry.samples.setdefault(key, []).append(seconds)
        except Exception as exc:  # noqa: BLE001
            if mode == 'forward':
                entry.fail('forward', exc)
            else:
                entry.failed_modes[mode] = describe(exc)
                log(f'  {entry.spec.name} {mode}: {describe(exc)}')


def run_rounds(entries: List[Entry], images: Dict[str, np.ndarray],
               repeats: int) -> None:
    """Round-robin: each image through model A, B, C, then the next."""
    rounds = [(r, name) for r in range(repeats) for name in images]
    for i, (repeat, name) in enumerate(rounds, 1):
        log(f'round {i}/{len(rounds)} (pass {repeat + 1}, {name})')
        for entry in filter(lambda e: e.runnable, entries):
            measure_once(entry, name, images[name])


def summarise_timings(entry: Entry) -> None:
    """Medians in ms into the row (sample key + '_ms' = Row field)."""
    for key, samples in entry.samples.items():
        setattr(entry.row, f'{key}_ms', median_ms(samples))
    for mode, reason in entry.failed_modes.items():
        label = 'flip test' if mode == 'e2e_flip' else 'without flip test'
        entry.row.notes.append(f'{label}: {reason}')


# --------------------------------------------------------------------------
# AP through the config's test loop


@dataclass
class APData:
    """A COCO-format dataset to evaluate AP on: the annotation file is
    relative to ``data_root``, the images to ``data_root/img_prefix``."""
    data_root: str
    ann_file: str
    img_prefix: str = ''


def evaluate_ap(spec: ModelSpec, data: APData,
                work_dir: Path) -> Optional[float]:
    """``coco/AP`` of the config's test loop (``Runner.test()``) on
    ``data``, with the spec's checkpoint."""
    cfg = load_config(spec)
    loader = cfg.test_dataloader
    loader.update(num_workers=0, persistent_workers=False)
    loader.dataset.update(data_root=data.data_root, ann_file=data.ann_file,
                          data_prefix=dict(img=data.img_prefix))
    cfg.test_evaluator.ann_file = os.path.join(data.data_root, data.ann_file)
    cfg.update(work_dir=str(work_dir), load_from=spec.checkpoint,
               launcher='none', log_level='WARNING')
    with redirect_stdout(sys.stderr):  # COCO evaluation prints; keep stdout
        metrics = Runner.from_cfg(cfg).test()  # for the table
    return metrics.get('coco/AP')


def slug(name: str) -> str:
    return ''.join(c if c.isalnum() or c in '-_' else '_' for c in name)


def measure_ap(entries: List[Entry], data: APData, work_dir: Path) -> None:
    """AP of every model that has a checkpoint and ran; each evaluation's
    logs in ``work_dir/<model>``."""
    for entry in entries:
        if entry.spec.checkpoint is None or entry.row.status != 'ok':
            continue
        log(f'AP of {entry.spec.name}')
        try:
            entry.row.ap = evaluate_ap(entry.spec, data,
                                       work_dir / slug(entry.spec.name))
        except Exception as exc:  # noqa: BLE001
            entry.row.notes.append(f'AP: {describe(exc)}')


# --------------------------------------------------------------------------
# the whole comparison


def warn_if_busy(threads: int) -> None:
    """OpenMP threads that share cores with other jobs slow down a lot."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load + threads > cores + 0.5:
        log(f'warning: load average {load:.1f} on {cores} cores: other jobs '
            f'share the cores with {threads} torch threads, latencies will '
            'be inflated (wait for a quieter machine or use --threads 1)')


def compare_models(specs: List[ModelSpec],
                   images: Dict[str, np.ndarray],
                   image_dir: Path,
                   repeats: int = 1,
                   memory: bool = True,
                   threads: Optional[int] = None,
                   ap_data: Optional[APData] = None,
                   ap_work_dir: Optional[Path] = None) -> List[Row]:
    """Measure every model (see the module docstring).

    Args:
        specs (list[ModelSpec]): the models, in the order of the report.
        images (dict): file name -> BGR image (:func:`load_images`) to time
            on; the first is also used for GFLOPs and memory.
        image_dir (Path): where the images are (the memory probe reads the
            first from its file).
        repeats (int): timed passes over all images.
        memory (bool): measure peak memory (a subprocess per model).
        threads (int, optional): torch threads of the memory probes (None:
            torch's default).
        ap_data (APData, optional): evaluate AP of the models with a
            checkpoint on this dataset.
        ap_work_dir (Path): the evaluations' work dirs go under it.

    Returns:
        list[Row]: one per spec, in order.
    """
    first_name, first = next(iter(images.items()))
    entries = build_entries(specs)
    measure_complexity(entries, first)
    prepare_inputs(entries, images)
    if memory:
        for entry in filter(lambda e: e.runnable, entries):
            measure_memory(entry, image_dir / first_name, threads)
    run_rounds(entries, images, repeats)
    for entry in entries:
        summarise_timings(entry)
    if ap_data is not None:
        measure_ap(entries, ap_data, ap_work_dir)
    return [entry.row for entry in entries]
