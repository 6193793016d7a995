"""Time the AE grouping decoder stage by stage against its previous version,
MMPose 1.x and the reference loop, on the official fixtures and at real
sizes.

Cases:

- the 8 COCO fixture cases (384-pixel maps), checked against the official
  decoder's outputs with the same assignment solver (PASS / FAIL):
  ``official_decoder_cases_munkres114.npz`` for ``munkres-1.1`` (the
  default), ``official_decoder_cases.npz`` for ``munkres`` (3.0.0);
- real sizes, maps as the head hands them to the decoder (heatmaps
  (1, K, H, W), tags (1, L*K, H, W), flip test: L = 2): the test input of an
  810 x 1080 photo for W32-512 (704 x 512) and W48-640 (896 x 640), with 1,
  5 and 20 people (``higherhrnet_plugin.testing.decoder_cases``), checked
  against the reference loop, bit for bit.

Decoders (``higherhrnet_plugin.benchmarks.decoder``): ``ours``,
``baseline`` (with ``--baseline FILE``: an older ``ae_grouping.py``, e.g.
from git history, called as the codec called it, and checked bit for bit
against ours with the baseline's assignment solver), ``mmpose`` (MMPose 1.x
``AssociativeEmbedding.batch_decode``, same settings) and ``reference``.
They run interleaved, case by case (a, b, c, a, b, c, ...), so that load
changes hit all alike; MMPose's decoder and the reference loop, which take
seconds at real sizes, only in the first ``--slow-repeats`` rounds. The time
of each run is split into stages (layout, NMS, top-k, grouping with the
assignment solver inside, adjust, refine; the rest is "other"). Medians of
wall-clock milliseconds; "CPU" is the thread's CPU time, less sensitive to
other jobs on the machine. Exit status 1 if a check fails.

Example::

    git show <commit>:higherhrnet_plugin/codecs/ae_grouping.py > /tmp/old.py
    python tools/benchmark_decoder.py --baseline /tmp/old.py --repeats 5
"""
import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import higherhrnet_plugin  # noqa: E402,F401  (shims before mmpose.*)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from higherhrnet_plugin.codecs.ae_grouping import (  # noqa: E402
    AEGroupingConfig, batch_group_keypoints)
from higherhrnet_plugin.benchmarks.decoder import (  # noqa: E402
    STAGES, load_module_file, make_decoders, same_people)
from higherhrnet_plugin.benchmarks.stage_timer import StageTimer  # noqa: E402
from higherhrnet_plugin.testing.decoder_cases import (  # noqa: E402
    REAL_INPUT_SIZES, official_cases, real_size_maps)

SLOW = ('mmpose', 'reference')
#: The official decoder's outputs with each assignment solver.
FIXTURE_FILES = {
    'munkres-1.1': 'official_decoder_cases_munkres114.npz',
    'munkres': 'official_decoder_cases.npz',
}
LABELS = {
    'ours': 'ours',
    'baseline': 'baseline (--baseline)',
    'mmpose': 'MMPose 1.x',
    'reference': 'reference loop',
}
TARGET_MS = 20.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed rounds over all cases (default 5)')
    parser.add_argument('--slow-repeats', type=int, default=1,
                        help='rounds in which MMPose\'s decoder and the '
                        'reference loop run too (default 1)')
    parser.add_argument('--assignment-solver', default='munkres-1.1',
                        choices=sorted(FIXTURE_FILES),
                        help='AEGroupingConfig.assignment_solver (default '
                        'munkres-1.1)')
    parser.add_argument('--baseline', type=Path, default=None,
                        help='an older ae_grouping.py to time side by side')
    parser.add_argument('--people', type=int, nargs='+', default=[1, 5, 20])
    parser.add_argument('--models', nargs='+', default=list(REAL_INPUT_SIZES),
                        choices=list(REAL_INPUT_SIZES))
    parser.add_argument('--no-fixtures', action='store_true',
                        help='real-size cases only')
    parser.add_argument(
        '--fixtures', type=Path, default=REPO.parent / 'shared' / 'fixtures',
        help='folder with the official decoder fixtures '
        '(default: ../shared/fixtures beside the repository)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (default 1)')
    return parser.parse_args(argv)


def log(message):
    print(message, file=sys.stderr, flush=True)


def load_cases(args, cfg, baseline):
    """Cases as dicts: name, maps, check target, decoders."""
    cases = []
    if not args.no_fixtures:
        path = args.fixtures / FIXTURE_FILES[args.assignment_solver]
        if not path.exists():
            sys.exit(f'{path} not found; pass --fixtures or --no-fixtures')
        for case in official_cases(path):
            heatmaps = torch.from_numpy(case['heatmaps'])[None]
            tags = torch.from_numpy(case['tags'])[None]
            cases.append(dict(
                name=case['name'], kind='fixture', heatmaps=heatmaps,
                tags=tags, expected=case['expected']['adjust_refine'],
                decoders=make_decoders(heatmaps, tags, cfg, baseline)))
    for model in args.models:
        for people in args.people:
            log(f'building {model}, {people} people')
            heatmaps, tags = real_size_maps(people, REAL_INPUT_SIZES[model],
                                            seed=people)
            noun = 'person' if people == 1 else 'people'
            cases.append(dict(
                name=f'{model}, {people} {noun}', kind='real',
                model=model, people=people, heatmaps=heatmaps, tags=tags,
                expected=None,
                decoders=make_decoders(heatmaps, tags, cfg, baseline)))
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
            results[case['name'], 'ours, as baseline'] = batch_group_keypoints(
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
    the reference loop (real sizes, bit for bit); the baseline against
    ours (bit for bit)."""
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
        baseline = results.get((case['name'], 'baseline'))
        if baseline is not None:
            ok = ok and same_people(
                baseline, results[case['name'], 'ours, as baseline'],
                exact=True)
        verdicts[case['name']] = 'PASS' if ok else 'FAIL'
    return verdicts


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


def report(args, cases, runs, verdicts):
    print(f'AE grouping decoder (assignment solver '
          f'{args.assignment_solver}), {args.repeats} rounds '
          f'({args.slow_repeats} for MMPose and the reference), CPU only: '
          f'{platform.processor() or platform.machine()}, '
          f'{torch.get_num_threads()} torch thread(s), torch '
          f'{torch.__version__}, numpy {np.__version__}, load average '
          f'{os.getloadavg()[0]:.1f}\n')
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


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = AEGroupingConfig(assignment_solver=args.assignment_solver)
    baseline = (load_module_file(args.baseline, 'baseline_ae_grouping')
                if args.baseline else None)
    cases = load_cases(args, cfg, baseline)
    if args.slow_repeats < 1:
        for case in cases:
            case['decoders'] = {name: decoder for name, decoder
                                in case['decoders'].items()
                                if name not in SLOW}
    runs, results = measure(cases, args.repeats, args.slow_repeats,
                            baseline_settings(baseline, cfg))
    verdicts = check(cases, results)
    report(args, cases, runs, verdicts)
    return 1 if 'FAIL' in verdicts.values() else 0


if __name__ == '__main__':
    sys.exit(main())
