"""The decoder benchmark behind ``tools/benchmark_decoder.py``: the
decoders it times, where each spends its time, the cases, the checks and
the report.

Every decoder takes the maps as the head hands them over, heatmaps
(1, K, H, W) and tags (1, L*K, H, W), and its time is split into stages by
wrapping the functions that do each one while it runs
(:class:`~.stage_timer.StageTimer`):

- ``layout``: bringing the tags into the decoder's own layout;
- ``nms``, ``topk``: the peaks of every heatmap;
- ``grouping``: candidates into people, with ``assignment`` (the Hungarian
  solver) inside it;
- ``adjust``: the quarter-pixel shift; ``refine``: filling missing joints.

Decoders: ``ours`` (:func:`~..codecs.ae_grouping.batch_group_keypoints`),
``baseline`` (an older ``ae_grouping.py`` given as a file, called the way
the codec called it: tags (K, H, W, L) as a permuted view, which it made
contiguous), ``mmpose`` (MMPose 1.x ``AssociativeEmbedding.batch_decode``)
and ``reference`` (the per-joint loop of
:mod:`~higherhrnet_plugin.testing.reference_ae_grouping`).
"""
import dataclasses
import importlib.util
import os
import statistics
import sys
import time
import types
from pathlib import Path
from typing import (Callable, Dict, List, NamedTuple, Optional, Sequence,
                    Tuple)

import numpy as np
import torch
from torch import Tensor

from ..codecs import ae_grouping, ae_maps
from ..testing import reference_ae_grouping
from ..testing.decoder_cases import (REAL_INPUT_SIZES, official_cases,
                                     real_size_maps, tags_per_joint)
from .machine import cpu_name
from .stage_timer import Hooks, StageTimer

#: Stages, in the order they run; ``assignment`` is part of ``grouping``.
STAGES = ('layout', 'nms', 'topk', 'grouping', 'assignment', 'adjust',
          'refine')

#: The decoders :func:`make_decoders` can make.
DECODERS = ('ours', 'numpy', 'baseline', 'mmpose', 'reference')
#: Decoders that take seconds at real sizes.
SLOW = ('mmpose', 'reference')
#: The official decoder's outputs with each assignment solver.
FIXTURE_FILES = {
    'munkres-1.1': 'official_decoder_cases_munkres114.npz',
    'munkres': 'official_decoder_cases.npz',
}
LABELS = {
    'ours': 'ours',
    'numpy': 'ours, NumPy path',
    'baseline': 'baseline (--baseline)',
    'mmpose': 'MMPose 1.x',
    'reference': 'reference loop',
}
#: Settings an older ``ae_grouping.py`` named differently: its name -> ours.
RENAMED_SETTINGS = {'max_people': 'max_offered_groups'}
#: W32-512 flip-test decode target, ms.
TARGET_MS = 20.0


class Decoder(NamedTuple):
    """A decoder ready to run on one case.

    Attributes:
        run (callable): decodes; returns (grouped (P, K, 3 + L), scores)
            where comparable with the official output, else None.
        hooks (Hooks): what to time as each stage.
    """
    run: Callable[[], Optional[Tuple[np.ndarray, np.ndarray]]]
    hooks: Hooks


def load_module_file(path: Path, name: str):
    """Import a Python file as a module (e.g. an older ``ae_grouping.py``
    taken from git history)."""
    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None:
        raise ValueError(f'{path}: not a Python file')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_baseline(path: Path):
    """The baseline decoder: an older ``ae_grouping.py`` (a file), or the
    ``ae_grouping`` module of an older checkout of this repository (a
    folder, e.g. a ``git worktree``), imported under the package name
    ``baseline_codecs`` without running the plugin's ``__init__`` (which
    would register its modules with MMPose a second time)."""
    if not path.is_dir():
        return load_module_file(path, 'baseline_ae_grouping')
    codecs = path / 'higherhrnet_plugin' / 'codecs'
    if not (codecs / 'ae_grouping.py').exists():
        raise ValueError(f'{path}: no higherhrnet_plugin/codecs/'
                         'ae_grouping.py in this folder')
    for name in [n for n in sys.modules if n.split('.')[0] ==
                 'baseline_codecs']:  # an earlier baseline's modules
        del sys.modules[name]
    package = types.ModuleType('baseline_codecs')
    package.__path__ = [str(codecs)]
    sys.modules['baseline_codecs'] = package
    return importlib.import_module('baseline_codecs.ae_grouping')


def make_decoders(heatmaps: Tensor, tags: Tensor,
                  cfg: ae_grouping.AEGroupingConfig,
                  baseline=None,
                  names: Sequence[str] = DECODERS) -> Dict[str, Decoder]:
    """The decoders on one case, inputs prepared outside the timing.

    Args:
        heatmaps (Tensor): (1, K, H, W) float32.
        tags (Tensor): (1, L*K, H, W) float32, channel ``l * K + k``.
        cfg (AEGroupingConfig): Settings (MMPose's decoder gets the same).
        baseline (module, optional): an older ``ae_grouping`` module.
        names (Sequence[str]): which decoders to make.

    Returns:
        dict: name -> :class:`Decoder`.
    """
    decoders = {}
    if 'ours' in names:
        decoders['ours'] = _batch_decoder(ae_grouping, heatmaps, tags, cfg)
    if 'numpy' in names and ae_maps.kernels_built():
        decoders['numpy'] = _numpy_path(
            _batch_decoder(ae_grouping, heatmaps, tags, cfg))
    if 'baseline' in names and baseline is not None:
        # an older checkout has our entry point; an older file, its own
        make = (_batch_decoder if hasattr(baseline, 'batch_group_keypoints')
                else _single_image_decoder)
        decoders['baseline'] = make(baseline, heatmaps, tags,
                                    baseline_config(baseline, cfg))
    if 'mmpose' in names:
        decoders['mmpose'] = _mmpose_decoder(heatmaps, tags, cfg)
    if 'reference' in names:
        decoders['reference'] = _reference_decoder(heatmaps, tags, cfg)
    return decoders


def _batch_decoder(grouping, heatmaps: Tensor, tags: Tensor,
                   cfg) -> Decoder:
    """This plugin's decoder, ``batch_group_keypoints`` of ``grouping``
    (our ``ae_grouping`` or that of an older checkout), with its stages."""
    maps = sys.modules[grouping.__name__.rsplit('.', 1)[0] + '.ae_maps']
    return Decoder(
        lambda: grouping.batch_group_keypoints(heatmaps, tags, cfg)[0], {
            'layout': [(grouping, '_map_readers')],
            'nms': [(maps, 'TileMaxima'), (maps, 'peak_candidates')],
            'topk': [(maps, 'topk_of_candidates')],
            'grouping': [(grouping, '_match_by_tag')],
            'assignment': [(grouping, 'min_cost_assignment')],
            'adjust': [(grouping, '_adjust_in_place')],
            'refine': [(grouping, '_refine_in_place')],
        })


def _numpy_path(decoder: Decoder) -> Decoder:
    """``decoder`` run without the compiled kernels (what an install
    without a C compiler gets)."""

    def run():
        with ae_maps.numpy_path():
            return decoder.run()

    return decoder._replace(run=run)


def _single_image_decoder(grouping, heatmaps: Tensor, tags: Tensor,
                          cfg) -> Decoder:
    """An older file's ``group_keypoints``, called as the codec called it:
    tags as a permuted (K, H, W, L) view, made contiguous inside."""
    per_joint = tags[0].unflatten(0, (-1, heatmaps.shape[1])).permute(
        1, 2, 3, 0)
    return Decoder(
        lambda: grouping.group_keypoints(heatmaps[0], per_joint, cfg), {
            'layout': [(grouping, '_prepare_maps')],
            'nms': [(grouping, '_suppress')],
            'topk': [(grouping, '_topk')],
            'grouping': [(grouping, '_match_by_tag')],
            'assignment': [(grouping, 'min_cost_assignment')],
            'adjust': [(grouping, '_adjust_in_place')],
            'refine': [(grouping, '_refine_in_place')],
        })


def _mmpose_decoder(heatmaps: Tensor, tags: Tensor,
                    cfg: ae_grouping.AEGroupingConfig) -> Decoder:
    """MMPose 1.x's ``AssociativeEmbedding.batch_decode`` with the same
    settings (it takes the head's layout)."""
    from mmpose.codecs import AssociativeEmbedding
    from mmpose.codecs import associative_embedding as module
    num_joints, height, width = heatmaps.shape[1:]
    codec = AssociativeEmbedding(
        input_size=(width, height), heatmap_size=(width, height),
        decode_keypoint_order=cfg.joint_order(num_joints),
        decode_nms_kernel=cfg.nms_kernel, decode_topk=cfg.topk,
        decode_keypoint_thr=cfg.detection_threshold,
        decode_tag_thr=cfg.tag_threshold,
        decode_max_instances=cfg.max_offered_groups, decode_center_shift=0.5)

    def run():
        codec.batch_decode(heatmaps, tags)

    return Decoder(run, {
        'nms': [(module, 'batch_heatmap_nms')],
        'topk': [(codec, '_get_batch_topk')],
        'grouping': [(codec, '_group_keypoints')],
        'assignment': [(module, '_py_max_match')],
        'adjust': [(module, 'refine_keypoints')],
        'refine': [(codec, '_fill_missing_keypoints')],
    })


def _reference_decoder(heatmaps: Tensor, tags: Tensor,
                       cfg: ae_grouping.AEGroupingConfig) -> Decoder:
    """The reference loop, after bringing the tags into its (K, H, W, L)
    layout (timed as ``layout``)."""
    module = reference_ae_grouping
    heatmaps_np, tags_np = heatmaps[0].numpy(), tags[0].numpy()
    holder = _LayoutHolder()

    def run():
        per_joint = holder.contiguous(tags_per_joint(tags_np,
                                                     heatmaps_np.shape[0]))
        return module.reference_group_keypoints(heatmaps_np, per_joint, cfg)

    hooks = {
        'layout': [(holder, 'contiguous')],
        'nms': [(module, '_suppress')],
        'topk': [(module, '_candidates')],
        'grouping': [(module, '_group')],
        'adjust': [(module, '_adjust')],
        'refine': [(module, '_refine')],
    }
    hooks['assignment'] = [(module, 'min_cost_assignment')]
    return Decoder(run, hooks)


class _LayoutHolder:
    """Holds the layout step of a decoder as a hookable method."""

    @staticmethod
    def contiguous(array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array)


def same_people(got: Tuple[np.ndarray, np.ndarray],
                expected: Tuple[np.ndarray, np.ndarray],
                exact: bool = False) -> bool:
    """Same people, in any order (or bit for bit, in order, if ``exact``):
    keypoints within 1e-3 px, values, tags and scores within 1e-5."""
    from scipy.optimize import linear_sum_assignment
    grouped, scores = got
    want, want_scores = expected
    if grouped.shape != want.shape or scores.shape != want_scores.shape:
        return False
    if exact:
        return bool(np.array_equal(grouped, want)
                    and np.array_equal(scores, want_scores))
    cost = np.abs(want[:, None] - grouped[None]).sum(axis=(2, 3))
    _, order = linear_sum_assignment(cost)
    grouped, scores = grouped[order], scores[order]
    return bool(
        np.allclose(grouped[..., :2], want[..., :2], rtol=0, atol=1e-3)
        and np.allclose(grouped[..., 2:], want[..., 2:], rtol=0, atol=1e-5)
        and np.allclose(scores, want_scores, rtol=0, atol=1e-5))


# --------------------------------------------------------------------------
# Running the benchmark
# --------------------------------------------------------------------------


def log(message: str) -> None:
    """Progress, on stderr (the tables go to stdout)."""
    print(message, file=sys.stderr, flush=True)


def load_cases(cfg: ae_grouping.AEGroupingConfig,
               fixtures: Optional[Path],
               models: Sequence[str],
               people: Sequence[int],
               baseline=None,
               slow: bool = True) -> List[dict]:
    """The cases, as dicts: name, kind (``'fixture'`` or ``'real'``), maps,
    expected output (fixtures; None: checked against the reference loop)
    and decoders.

    Args:
        cfg (AEGroupingConfig): the decoders' settings.
        fixtures (Path, optional): the official decoder fixtures of
            ``cfg.assignment_solver`` (see :data:`FIXTURE_FILES`); None: no
            fixture cases.
        models (Sequence[str]): keys of ``REAL_INPUT_SIZES``.
        people (Sequence[int]): people per real-size case.
        baseline (module, optional): an older ``ae_grouping`` module.
        slow (bool): with MMPose's decoder and the reference loop
            (:data:`SLOW`).
    """
    names = [name for name in DECODERS if slow or name not in SLOW]
    cases = []
    if fixtures is not None:
        for case in official_cases(fixtures):
            heatmaps = torch.from_numpy(case['heatmaps'])[None]
            tags = torch.from_numpy(case['tags'])[None]
            cases.append(dict(
                name=case['name'], kind='fixture', heatmaps=heatmaps,
                tags=tags, expected=case['expected']['adjust_refine'],
                decoders=make_decoders(heatmaps, tags, cfg, baseline, names)))
    for model in models:
        for count in people:
            log(f'building {model}, {count} people')
            heatmaps, tags = real_size_maps(count, REAL_INPUT_SIZES[model],
                                            seed=count)
            noun = 'person' if count == 1 else 'people'
            cases.append(dict(
                name=f'{model}, {count} {noun}', kind='real',
                model=model, people=count, heatmaps=heatmaps, tags=tags,
                expected=None,
                decoders=make_decoders(heatmaps, tags, cfg, baseline, names)))
    return cases


def measure(cases, repeats: int, slow_repeats: int, baseline_cfg):
    """Per case and decoder: runs, each (wall s, CPU s, stage wall s); and
    each decoder's result (ours also with the baseline's settings)."""
    log('warm-up')
    results = {}
    for case in cases:
        for name, decoder in case['decoders'].items():
            if name not in SLOW:
                results[case['name'], name] = decoder.run()
        if baseline_cfg is not None:
            results[case['name'], 'ours, as baseline'] = \
                ae_grouping.batch_group_keypoints(
                    case['heatmaps'], case['tags'], baseline_cfg)[0]
    runs = {(c['name'], d): [] for c in cases for d in c['decoders']}
    for rep in range(repeats):
        log(f'round {rep + 1}/{repeats}')
        for case in cases:
            for name, decoder in case['decoders'].items():
                if name in SLOW and rep >= slow_repeats:
                    continue
                timer = StageTimer()
                with timer.hooked(decoder.hooks):
                    wall, cpu = time.perf_counter(), time.thread_time()
                    result = decoder.run()
                    wall = time.perf_counter() - wall
                    cpu = time.thread_time() - cpu
                results.setdefault((case['name'], name), result)
                runs[case['name'], name].append((wall, cpu, timer))
    return runs, results


def check(cases, results):
    """Verdict per case: ours against the official output (fixtures) or
    the reference loop (real sizes, bit for bit); our NumPy path and the
    baseline against ours (bit for bit)."""
    verdicts = {}
    for case in cases:
        ours = results[case['name'], 'ours']
        if case['expected'] is not None:
            ok = same_people(ours, case['expected'])
        elif (case['name'], 'reference') in results:
            ok = same_people(ours, results[case['name'], 'reference'],
                             exact=True)
        else:  # --slow-repeats 0: the reference loop did not run
            verdicts[case['name']] = 'not checked'
            continue
        numpy_path = results.get((case['name'], 'numpy'))
        if numpy_path is not None:
            ok = ok and same_people(numpy_path, ours, exact=True)
        baseline = results.get((case['name'], 'baseline'))
        if baseline is not None:
            ok = ok and same_people(
                baseline, results[case['name'], 'ours, as baseline'],
                exact=True)
        verdicts[case['name']] = 'PASS' if ok else 'FAIL'
    return verdicts


def baseline_config(baseline, cfg: ae_grouping.AEGroupingConfig):
    """Our settings in the baseline's own ``AEGroupingConfig``: the fields
    it has, under the names it used (:data:`RENAMED_SETTINGS`)."""
    values = {}
    for name in baseline.AEGroupingConfig.__dataclass_fields__:
        ours = RENAMED_SETTINGS.get(name, name)
        if hasattr(cfg, ours):
            values[name] = getattr(cfg, ours)
    return baseline.AEGroupingConfig(**values)


def baseline_settings(baseline, cfg):
    """Our settings as the baseline applies them: one that predates the
    assignment_solver setting solves with the munkres package."""
    if baseline is None:
        return None
    if 'assignment_solver' in getattr(baseline.AEGroupingConfig,
                                      '__dataclass_fields__', {}):
        return cfg
    return dataclasses.replace(cfg, assignment_solver='munkres')


def median_ms(values):
    return statistics.median(values) * 1e3


def stage_medians(runs):
    """Median wall ms per stage (None where not measured) and 'other'."""
    out = {}
    for stage in STAGES:
        values = [timer.wall.get(stage) for _, _, timer in runs]
        out[stage] = (None if all(v is None for v in values) else
                      median_ms([v or 0.0 for v in values]))
    out['other'] = median_ms([
        wall - sum(v for s, v in timer.wall.items() if s != 'assignment')
        for wall, _, timer in runs
    ])
    return out


def cell(value):
    return '—' if value is None else f'{value:.1f}'


def report(cases, runs, verdicts, cfg: ae_grouping.AEGroupingConfig,
           repeats: int, slow_repeats: int) -> None:
    """Print the tables: fixture cases (totals), real sizes (stages), and
    per real-size case the time of ours against the target and the
    others."""
    print(f'AE grouping decoder (assignment solver '
          f'{cfg.assignment_solver}), {repeats} rounds '
          f'({slow_repeats} for MMPose and the reference), CPU only: '
          f'{cpu_name()}, {torch.get_num_threads()} torch thread(s), torch '
          f'{torch.__version__}, numpy {np.__version__}, compiled kernels '
          f'{"in use" if ae_maps.kernels_built() else "not built"}, load '
          f'average {os.getloadavg()[0]:.1f}\n')
    decoders = list(cases[0]['decoders'])
    fixtures = [c for c in cases if c['kind'] == 'fixture']
    if fixtures:
        print('Official fixture cases (384-pixel maps), median ms per '
              'image:\n')
        print('| case | K x H x W, L | people | ' +
              ' | '.join(LABELS[d] for d in decoders) + ' | vs official |')
        print('|---|---|---:|' + '---:|' * len(decoders) + '---|')
        for case in fixtures:
            k, h, w = case['heatmaps'].shape[1:]
            tag_dim = case['tags'].shape[1] // k
            print(f'| {case["name"]} | {k} x {h} x {w}, {tag_dim} | '
                  f'{len(case["expected"][0])} | ' + ' | '.join(
                      f'{median_ms([r[0] for r in runs[case["name"], d]]):.1f}'
                      for d in decoders) + f' | {verdicts[case["name"]]} |')
        print()
    real = [c for c in cases if c['kind'] == 'real']
    if not real:
        return
    print('Real sizes, maps as the head hands them over (flip test, L = 2), '
          'median wall ms per stage (assignment: inside grouping):\n')
    print('| case | decoder | total | CPU | layout | NMS | top-k | grouping '
          '| (assignment) | adjust | refine | other | check |')
    print('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
    for case in real:
        for d in decoders:
            r = runs[case['name'], d]
            stages = stage_medians(r)
            check_cell = verdicts[case['name']] if d == 'ours' else ''
            print(f'| {case["name"]} | {LABELS[d]} | '
                  f'{median_ms([x[0] for x in r]):.1f} | '
                  f'{median_ms([x[1] for x in r]):.1f} | ' + ' | '.join(
                      cell(stages[s]) for s in STAGES) +
                  f' | {cell(stages["other"])} | {check_cell} |')
    print()
    for case in real:
        total = {
            d: median_ms([x[0] for x in runs[case['name'], d]])
            for d in decoders
        }
        ours = total['ours']
        ratios = ', '.join(f'{d} {total[d] / ours:.1f}x' for d in decoders
                           if d != 'ours')
        target = ''
        if case['model'] == 'W32-512':
            target = (f' (target <= {TARGET_MS:.0f} ms: '
                      f'{"met" if ours <= TARGET_MS else "NOT met"})')
        print(f'{case["name"]}: ours {ours:.1f} ms{target}; time / ours: '
              f'{ratios}')
