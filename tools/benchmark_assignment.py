"""Time the grouping decoder's assignment solvers side by side.

Takes the decoder inputs of the official fixture cases (8 COCO, 4 CrowdPose)
and of synthetic crowded images (``--people`` people, tag dimension 1 and 2),
records the candidate x group cost matrices the grouping stage solves, and
times, interleaved within every round:

- the assignment alone on those matrices, per matrix size: ``munkres-1.1``
  (the default, this plugin's re-implementation of munkres 1.1.x),
  ``munkres`` (the installed package, 3.0.0), munkres 1.1.4 itself (if
  tools/install.sh installed it beside 3.0.0) and ``scipy``;
- the whole grouping stage (candidates to groups, assignments included) with
  each of them.

It also checks that ``munkres-1.1`` returns munkres 1.1.4's assignment on
every recorded matrix (exit status 1 otherwise).

Example::

    OMP_NUM_THREADS=1 python tools/benchmark_assignment.py --repeats 5
"""
import argparse
import platform
import sys
from collections import defaultdict

import higherhrnet_plugin  # noqa: F401  (shims before mmpose.*)
import numpy as np

from higherhrnet_plugin.codecs.ae_grouping import AEGroupingConfig
from higherhrnet_plugin.codecs.assignment import min_cost_assignment
from higherhrnet_plugin.testing import SHARED_ROOT
from higherhrnet_plugin.testing.assignment import (crowded_maps,
                                                   grouping_inputs,
                                                   load_munkres_11,
                                                   package_solver,
                                                   record_assignments,
                                                   time_grouping,
                                                   time_solvers)
from higherhrnet_plugin.testing.decoder_cases import tags_to_head_layout

FIXTURES = {
    'COCO fixtures': ('official_decoder_cases_munkres114.npz', None),
    'CrowdPose fixtures': ('official_crowdpose_decoder_cases_munkres114.npz',
                           [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13]),
}
SIZES = ((1, 1), (2, 3), (4, 9), (10, 19), (20, 30))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed rounds (default 5); medians are shown')
    parser.add_argument('--people', type=int, default=30,
                        help='people in the crowded images (default 30)')
    parser.add_argument('--crowded', type=int, default=4,
                        help='crowded images per tag dimension (default 4)')
    return parser.parse_args()


def load_inputs(people: int, crowded: int):
    """Grouping-stage inputs per input set."""
    inputs = {}
    for name, (file, order) in FIXTURES.items():
        path = SHARED_ROOT / 'fixtures' / file
        if not path.exists():
            print(f'({path} not found: {name} left out)', file=sys.stderr)
            continue
        with np.load(path) as data:
            count = sum(key.endswith('_heatmaps') for key in data.files)
            inputs[name] = [
                grouping_inputs(data[f'case{i}_heatmaps'],
                                tags_to_head_layout(data[f'case{i}_tags']),
                                AEGroupingConfig(keypoint_order=order))
                for i in range(count)
            ]
    inputs[f'crowded, {people} people'] = [
        grouping_inputs(*crowded_maps(people, tag_dim=tag_dim, seed=seed),
                        AEGroupingConfig())
        for tag_dim in (1, 2) for seed in range(crowded)
    ]
    return inputs


def recorded_matrices(inputs):
    from higherhrnet_plugin.codecs import ae_grouping
    with record_assignments() as calls:
        for args in inputs:
            ae_grouping._match_by_tag(*args)
    return calls.matrices


def main():
    args = parse_args()
    solvers = {
        'munkres-1.1 (default)': min_cost_assignment,
        'munkres (installed package)':
        lambda cost: min_cost_assignment(cost, 'munkres'),
        'scipy': lambda cost: min_cost_assignment(cost, 'scipy'),
    }
    grouping = {'munkres-1.1 (default)': 'munkres-1.1',
                'munkres (installed package)': 'munkres', 'scipy': 'scipy'}
    try:
        reference = package_solver(load_munkres_11())
        solvers['munkres 1.1.4 package'] = grouping[
            'munkres 1.1.4 package'] = reference
    except FileNotFoundError as err:
        reference = None
        print(f'({err}; left out)', file=sys.stderr)
    import munkres
    print(f'Assignment solvers, {args.repeats} rounds (medians), '
          f'{platform.machine()}, Python {platform.python_version()}, '
          f'numpy {np.__version__}, installed munkres '
          f'{munkres.__version__}\n')
    names = list(solvers)
    wrong = 0
    for set_name, inputs in load_inputs(args.people, args.crowded).items():
        matrices = recorded_matrices(inputs)
        if reference is not None:
            wrong += sum(not np.array_equal(min_cost_assignment(cost),
                                            reference(cost))
                         for cost in matrices)
        by_size = defaultdict(list)
        for cost in matrices:
            for low, high in SIZES:
                if low <= max(cost.shape) <= high:
                    by_size[low, high].append(cost)
        print(f'### {set_name}: {len(inputs)} images, {len(matrices)} '
              'assignments\n')
        print('| | ' + ' | '.join(names) + ' |')
        print('|---|' + '---:|' * len(names))
        for (low, high), group in sorted(by_size.items()):
            seconds = time_solvers(group, solvers, args.repeats)
            print(f'| size {low}-{high} ({len(group)}), us / matrix | ' +
                  ' | '.join(f'{seconds[n] / len(group) * 1e6:.1f}'
                             for n in names) + ' |')
        seconds = time_solvers(matrices, solvers, args.repeats)
        print('| all assignments, ms / image | ' +
              ' | '.join(f'{seconds[n] / len(inputs) * 1e3:.2f}'
                         for n in names) + ' |')
        stage = time_grouping(inputs, grouping, args.repeats)
        default = stage['munkres-1.1 (default)']
        print('| grouping stage, ms / image | ' +
              ' | '.join(f'{stage[n] / len(inputs) * 1e3:.2f}'
                         for n in names) + ' |')
        print('| grouping stage / default | ' +
              ' | '.join(f'{stage[n] / default:.2f}' for n in names) +
              ' |\n')
    if reference is not None:
        print(f'munkres-1.1 vs munkres 1.1.4 on every recorded matrix: '
              f'{"PASS" if wrong == 0 else f"FAIL ({wrong} differ)"}')
    return 1 if wrong else 0


if __name__ == '__main__':
    sys.exit(main())
