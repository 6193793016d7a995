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
``baseline`` (with ``--baseline PATH``: an older ``ae_grouping.py``, e.g.
from git history, called as the codec called it, or an older checkout of
this repository, a folder, whose own decoder then runs; either is checked
bit for bit against ours with the baseline's assignment solver),
``mmpose`` (MMPose 1.x
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
    git worktree add /tmp/previous <commit>
    python tools/benchmark_decoder.py --baseline /tmp/previous --repeats 5
"""
import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import higherhrnet_plugin  # noqa: E402,F401  (shims before mmpose.*)
import torch  # noqa: E402

from higherhrnet_plugin.benchmarks.decoder import (  # noqa: E402
    FIXTURE_FILES, baseline_settings, check, load_baseline, load_cases,
    measure, report)
from higherhrnet_plugin.codecs.ae_grouping import (  # noqa: E402
    AEGroupingConfig)
from higherhrnet_plugin.testing.decoder_cases import (  # noqa: E402
    REAL_INPUT_SIZES)


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
                        help='an older ae_grouping.py, or an older checkout '
                        'of this repository (a folder), to time side by '
                        'side')
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


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = AEGroupingConfig(assignment_solver=args.assignment_solver)
    baseline = load_baseline(args.baseline) if args.baseline else None
    fixtures = None
    if not args.no_fixtures:
        fixtures = args.fixtures / FIXTURE_FILES[args.assignment_solver]
        if not fixtures.exists():
            sys.exit(f'{fixtures} not found; pass --fixtures or '
                     '--no-fixtures')
    cases = load_cases(cfg, fixtures, args.models, args.people, baseline,
                       slow=args.slow_repeats > 0)
    runs, results = measure(cases, args.repeats, args.slow_repeats,
                            baseline_settings(baseline, cfg))
    verdicts = check(cases, results)
    report(cases, runs, verdicts, cfg, args.repeats, args.slow_repeats)
    return 1 if 'FAIL' in verdicts.values() else 0


if __name__ == '__main__':
    sys.exit(main())
