#!/usr/bin/env python
"""Compare HigherHRNet with MMPose's bottom-up models on this machine (CPU).

For every model, at the input size of its own test pipeline, it reports

* parameters and GFLOPs (MMEngine's ``FlopAnalyzer``, fvcore-style: one
  multiply-add counts as one flop), at the native square input size;
* forward latency: the network only (``model(inputs, None, mode='tensor')``)
  on the preprocessed real images;
* decode latency, without and with flip test: everything ``model.predict``
  does beyond the network (time in ``predict`` minus time in
  ``extract_feat`` and ``head.forward`` within the same call): for
  HigherHRNet the head's aggregation + ``decoder.decode``, for MMPose's
  models the post-processing of their ``head.predict``; both include the
  inverse transform to image pixels;
* end-to-end latency per image, without and with flip test:
  ``mmpose.apis.inference_bottomup`` on a decoded image (test pipeline +
  data preprocessor + forward + decode + inverse transform);
* peak memory: peak resident set size (RSS) during one
  ``inference_bottomup`` call, measured in a fresh subprocess per model;
* COCO AP when ``--checkpoint NAME=PATH`` and ``--data-root``/``--ann-file``
  are given (the config's test loop through MMEngine's ``Runner``).

Latencies are medians over ``--repeats`` passes over the images, measured
round-robin (model A, B, C, A, B, C, ...) so that load changes on the machine
hit all models alike. Models that cannot be built or run here (e.g. ops of
full mmcv under mmcv-lite) are reported with the reason. Weights are random
unless a checkpoint is given: latencies of the network do not depend on them,
decode latencies do (see docs/benchmark.md).

Writes ``results.md``, ``results.csv`` and ``latency.png`` to ``--out-dir``.

Examples::

    python tools/benchmark.py                       # all default models
    python tools/benchmark.py --models w32 ae rtmo --repeats 2 --threads 2
    python tools/benchmark.py --models tiny=configs/higherhrnet/coco/\
higherhrnet_hrnet-tiny_1xb2-30e_coco-256x256.py --checkpoint tiny=tiny.pth \
--data-root ../shared/data/coco/ --ann-file test_coco.json
"""
import argparse
import csv
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from contextlib import contextmanager, redirect_stdout
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Dict, List, Optional

if 'torch' not in sys.modules:  # read once, when OpenMP loads with torch
    # Idle OpenMP threads sleep instead of spinning: with other jobs on the
    # cores, spinning threads slow a 2-thread forward down 3-20x.
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import higherhrnet_plugin  # noqa: F401  (first: shims mmpose needs)
import numpy as np
import torch
import torch.nn.functional as F
from mmcv import imread
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.utils import get_installed_path
from mmpose.apis import inference_bottomup

from higherhrnet_plugin.apis import init_model

from higherhrnet_plugin.apis import network_inputs

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / 'shared' / 'data' / 'coco'
DEFAULT_OUT_DIR = REPO / 'work_dirs' / 'benchmark'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
MMPOSE_PREFIX = 'mmpose::'
MEMORY_TAG = 'MEMORY_PROBE_RESULT '

OURS = REPO / 'configs' / 'higherhrnet' / 'coco'
MMPOSE = MMPOSE_PREFIX + 'body_2d_keypoint/'
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


# --------------------------------------------------------------------------
# command line


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
    parser.add_argument(  # internal: run one memory probe and exit
        '--memory-probe', type=Path, metavar='IMAGE', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f'[benchmark] {message}', file=sys.stderr, flush=True)


def describe(exc: BaseException) -> str:
    """'ExceptionType: first line of the message' (or where it was raised)."""
    lines = str(exc).strip().splitlines()
    message = lines[0][:200] if lines else ''
    if not message:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        message = f'raised at {Path(frame.filename).name}:{frame.lineno}'
    return f'{type(exc).__name__}: {message}'


# --------------------------------------------------------------------------
# models and configs


@dataclass
class ModelSpec:
    name: str
    config: str
    checkpoint: Optional[str] = None


def parse_pairs(items: List[str], what: str) -> Dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition('=')
        if not sep or not name or not value:
            raise SystemExit(f'{what} expects NAME=VALUE, got {item!r}')
        pairs[name] = value
    return pairs


def resolve_specs(models: List[str],
                  checkpoints: List[str]) -> List[ModelSpec]:
    """Model keys and NAME=CONFIG pairs -> specs with their checkpoints."""
    weights = parse_pairs(checkpoints, '--checkpoint')
    specs = []
    for item in models:
        if item in DEFAULT_MODELS:
            name, config = DEFAULT_MODELS[item]
            path = weights.pop(item, None)
        elif '=' in item:
            name, config = item.split('=', 1)
            path = None
        else:
            raise SystemExit(f'unknown model {item!r}; keys: '
                             f'{", ".join(DEFAULT_MODELS)} or NAME=CONFIG')
        specs.append(ModelSpec(name, config, weights.pop(name, path)))
    if weights:
        raise SystemExit(f'--checkpoint for unknown models: {sorted(weights)}')
    return specs


def config_path(config: str) -> str:
    """A config path; ``mmpose::x`` is x in the installed MMPose's configs."""
    if config.startswith(MMPOSE_PREFIX):
        return os.path.join(
            get_installed_path('mmpose'), '.mim', 'configs',
            config[len(MMPOSE_PREFIX):])
    return config


def drop_url_init_cfgs(node):
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
    cfg = Config.fromfile(config_path(spec.config))
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


def _timed_method(method, totals: dict, key: str):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start
    return wrapper


@contextmanager
def stage_clock(model):
    """Seconds spent in the network (``extract_feat`` + ``head.forward``) and
    in ``predict`` while active, summed over calls."""
    totals = {'network': 0.0, 'predict': 0.0}
    targets = [(model, 'extract_feat', 'network'),
               (model.head, 'forward', 'network'),
               (model, 'predict', 'predict')]
    for owner, name, key in targets:
        setattr(owner, name, _timed_method(getattr(owner, name), totals, key))
    try:
        yield totals
    finally:
        for owner, name, _ in targets:
            delattr(owner, name)  # back to the class's method


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
    with flip_test(model, flip), stage_clock(model) as stages:
        total = timed(lambda: inference_bottomup(model, image))
    return {f'e2e{suffix}': total,
            f'decode{suffix}': stages['predict'] - stages['network']}


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
# peak memory, in a fresh process per model


def read_status_kb(key: str) -> int:
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(key)


def reset_peak_rss() -> None:
    """Reset VmHWM (Linux >= 4.0) so that it tracks the peak from now on."""
    with open('/proc/self/clear_refs', 'w') as clear_refs:
        clear_refs.write('5')


def memory_probe(spec: ModelSpec, image_path: Path) -> dict:
    """Peak RSS of one ``inference_bottomup`` call (config's test settings)
    and its rise over the RSS just before it, in MB."""
    model = build_model(spec)
    image = imread(str(image_path))
    reset_peak_rss()
    before = read_status_kb('VmRSS')
    inference_bottomup(model, image)
    peak = read_status_kb('VmHWM')
    return dict(peak_rss_mb=peak / 1024, rss_delta_mb=(peak - before) / 1024)


def memory_probe_main(args) -> None:
    """The subprocess: one tagged JSON line, the result or the error."""
    spec = resolve_specs(args.models, args.checkpoint)[0]
    try:
        result = memory_probe(spec, args.memory_probe)
    except Exception as exc:  # noqa: BLE001  (reported by the parent)
        result = dict(error=describe(exc))
    print(MEMORY_TAG + json.dumps(result))


def measure_memory(entry: Entry, image_path: Path, threads) -> None:
    spec = entry.spec
    command = [sys.executable, str(Path(__file__).resolve()),
               '--memory-probe', str(image_path),
               '--models', f'{spec.name}={spec.config}']
    if spec.checkpoint:
        command += ['--checkpoint', f'{spec.name}={spec.checkpoint}']
    if threads:
        command += ['--threads', str(threads)]
    log(f'peak memory of {spec.name} (subprocess)')
    result = subprocess.run(command, capture_output=True, text=True,
                            cwd=REPO)
    found = [line for line in result.stdout.splitlines()
             if line.startswith(MEMORY_TAG)]
    if not found:
        tail = (result.stderr.strip().splitlines() or ['no output'])[-1]
        entry.row.notes.append(f'memory: exit status {result.returncode}: '
                               f'{tail[:200]}')
        return
    measured = json.loads(found[-1][len(MEMORY_TAG):])
    if 'error' in measured:
        entry.row.notes.append(f'memory: {measured["error"]}')
        return
    for key, value in measured.items():
        setattr(entry.row, key, value)


# --------------------------------------------------------------------------
# AP through the config's test loop


def evaluate_ap(spec: ModelSpec, args, work_dir: Path) -> Optional[float]:
    cfg = load_config(spec)
    loader = cfg.test_dataloader
    loader.update(num_workers=0, persistent_workers=False)
    loader.dataset.update(data_root=args.data_root, ann_file=args.ann_file,
                          data_prefix=dict(img=args.img_prefix))
    cfg.test_evaluator.ann_file = os.path.join(args.data_root, args.ann_file)
    cfg.update(work_dir=str(work_dir), load_from=spec.checkpoint,
               launcher='none', log_level='WARNING')
    with redirect_stdout(sys.stderr):  # COCO evaluation prints; keep stdout
        metrics = Runner.from_cfg(cfg).test()  # for the table
    return metrics.get('coco/AP')


def measure_ap(entries: List[Entry], args) -> None:
    if not (args.data_root and args.ann_file):
        return
    for entry in entries:
        if entry.spec.checkpoint is None or entry.row.status != 'ok':
            continue
        log(f'AP of {entry.spec.name}')
        work_dir = args.out_dir / 'ap' / slug(entry.spec.name)
        try:
            entry.row.ap = evaluate_ap(entry.spec, args, work_dir)
        except Exception as exc:  # noqa: BLE001
            entry.row.notes.append(f'AP: {describe(exc)}')


def slug(name: str) -> str:
    return ''.join(c if c.isalnum() or c in '-_' else '_' for c in name)


# --------------------------------------------------------------------------
# output

COLUMNS = [  # (Row field, Markdown header, format)
    ('model', 'model', '{}'),
    ('input_px', 'test input (px)', '{}'),
    ('params_m', 'params (M)', '{:.2f}'),
    ('gflops', 'GFLOPs', '{:.1f}'),
    ('forward_ms', 'forward (ms)', '{:.0f}'),
    ('decode_ms', 'decode (ms)', '{:.0f}'),
    ('decode_flip_ms', 'decode, flip (ms)', '{:.0f}'),
    ('e2e_ms', 'end-to-end (ms)', '{:.0f}'),
    ('e2e_flip_ms', 'end-to-end, flip (ms)', '{:.0f}'),
    ('peak_rss_mb', 'peak RSS (MB)', '{:.0f}'),
    ('rss_delta_mb', 'RSS rise (MB)', '{:.0f}'),
    ('ap', 'AP', '{:.3f}'),
]


def cell(row: Row, name: str, fmt: str) -> str:
    value = getattr(row, name)
    return '—' if value is None or value == '' else fmt.format(value)


def markdown(rows: List[Row], context: dict) -> str:
    header = [title for _, title, _ in COLUMNS]
    lines = [f'# Bottom-up pose benchmark ({context["date"]})', '',
             ', '.join(f'{k}: {v}' for k, v in context.items()), '',
             '| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    for row in rows:
        lines.append('| ' + ' | '.join(
            cell(row, name, fmt) for name, _, fmt in COLUMNS) + ' |')
    notes = [f'- {row.model}: {note}' for row in rows for note in row.notes
             if row.status == 'ok']
    if notes:
        lines += ['', 'Notes:', ''] + notes
    failed = [row for row in rows if row.status != 'ok']
    if failed:
        lines += ['', 'Could not be benchmarked here:', '']
        lines += [f'- {row.model} ({row.status}): {row.reason}'
                  for row in failed]
    return '\n'.join(lines) + '\n'


def write_csv(rows: List[Row], path: Path) -> None:
    with open(path, 'w', newline='') as file:
        writer = csv.DictWriter(file, [f.name for f in fields(Row)])
        writer.writeheader()
        for row in rows:
            values = {key: round(value, 3) if isinstance(value, float)
                      else value for key, value in asdict(row).items()}
            writer.writerow(dict(values, notes='; '.join(row.notes)))


def plot_latency(rows: List[Row], path: Path) -> None:
    """End-to-end latency vs AP if any model has one, else vs GFLOPs."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    x_field = 'ap' if any(r.ap is not None for r in rows) else 'gflops'
    plotted = [r for r in rows if getattr(r, x_field) is not None]
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, row in enumerate(plotted):
        for y_field, marker in (('e2e_ms', 'o'), ('e2e_flip_ms', 'x')):
            if getattr(row, y_field) is not None:
                ax.scatter(getattr(row, x_field), getattr(row, y_field),
                           color=f'C{i}', marker=marker)
        ax.scatter([], [], color=f'C{i}', marker='s', label=row.model)
    ax.scatter([], [], color='gray', marker='o', label='no flip')
    ax.scatter([], [], color='gray', marker='x', label='flip test')
    ax.set_xlabel('COCO AP' if x_field == 'ap'
                  else 'GFLOPs (MMEngine, 1 multiply-add = 1 flop)')
    ax.set_ylabel('end-to-end latency per image (ms)')
    ax.set_title('CPU end-to-end latency (median)')
    ax.grid(alpha=0.3)
    ax.margins(x=0.1, y=0.1)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_context(args, images, started, load_before) -> dict:
    return {
        'date': started.strftime('%Y-%m-%d %H:%M'),
        'machine': f'{cpu_name()}, {os.cpu_count()} CPU cores',
        'torch threads': torch.get_num_threads(),
        'OMP_WAIT_POLICY': os.environ.get('OMP_WAIT_POLICY', 'unset'),
        'torch': torch.__version__,
        'images': f'{len(images)} from {args.images}',
        'repeats': args.repeats,
        'load (1 min) before/after':
            f'{load_before:.2f} / {os.getloadavg()[0]:.2f}',
    }


def write_outputs(rows: List[Row], context: dict, out_dir: Path) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown(rows, context)
    (out_dir / 'results.md').write_text(table)
    write_csv(rows, out_dir / 'results.csv')
    plot_latency(rows, out_dir / 'latency.png')
    return table


# --------------------------------------------------------------------------
# main


def warn_if_busy(threads: int) -> None:
    """OpenMP threads that share cores with other jobs slow down a lot."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load + threads > cores + 0.5:
        log(f'warning: load average {load:.1f} on {cores} cores: other jobs '
            f'share the cores with {threads} torch threads, latencies will '
            'be inflated (wait for a quieter machine or use --threads 1)')


def load_images(folder: Path) -> Dict[str, np.ndarray]:
    paths = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise SystemExit(f'no images in {folder}')
    return {p.name: imread(str(p)) for p in paths}


def main(argv=None) -> List[Row]:
    args = parse_args(argv)
    warnings.filterwarnings('ignore', category=UserWarning)
    warnings.filterwarnings('ignore', category=FutureWarning)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe_main(args)
        return []
    started, load_before = datetime.datetime.now(), os.getloadavg()[0]
    warn_if_busy(torch.get_num_threads())
    specs = resolve_specs(args.models, args.checkpoint)
    images = load_images(args.images)
    first_name, first = next(iter(images.items()))

    entries = build_entries(specs)
    measure_complexity(entries, first)
    prepare_inputs(entries, images)
    if not args.no_memory:
        for entry in filter(lambda e: e.runnable, entries):
            measure_memory(entry, args.images / first_name, args.threads)
    run_rounds(entries, images, args.repeats)
    for entry in entries:
        summarise_timings(entry)
    measure_ap(entries, args)

    rows = [entry.row for entry in entries]
    context = run_context(args, images, started, load_before)
    table = write_outputs(rows, context, args.out_dir)
    print(table)
    log(f'wrote results.md, results.csv, latency.png to {args.out_dir}')
    return rows


if __name__ == '__main__':
    main()
