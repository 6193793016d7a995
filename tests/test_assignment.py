"""The grouping's assignment picks munkres 1.1.x's optimum among ties.

``munkres`` 1.1.4 itself (installed by tools/install.sh into
``$VENV/munkres-1.1.4``, beside the pinned 3.0.0) is the reference: the
re-implementation must return its assignment on every matrix, in particular
on matrices with many equal-cost optima.
"""
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import higherhrnet_plugin  # noqa: F401  (shims before mmpose imports)
from higherhrnet_plugin.codecs import (MultiResolutionAssociativeEmbedding,
                                       assignment)
from higherhrnet_plugin.codecs.ae_grouping import (AEGroupingConfig,
                                                   group_keypoints)
from higherhrnet_plugin.codecs.assignment import (ASSIGNMENT_SOLVERS,
                                                  min_cost_assignment,
                                                  munkres11_assignment)
from higherhrnet_plugin.testing.assignment import (TIE_FAMILIES,
                                                   crowded_maps,
                                                   load_munkres_11,
                                                   package_solver,
                                                   record_assignments,
                                                   tie_heavy_costs)
from higherhrnet_plugin.testing.shared import skip_or_fail

from .conftest import load_tool

# random matrices per family (about 5 s, mostly munkres 1.1.4)
COUNTS = {'grouping': 2000, 'integers': 500, 'tenths': 500}

# Matrices on which munkres 1.1.x's float rounding in step 6 decides the
# answer: it turns a covered-row / uncovered-column entry c into (c + m) - m,
# and a variant that keeps c returns another assignment on each of these
# (found by a search over small random matrices, where this happened about
# once in 20,000). The last one is shaped like the decoder's costs.
ROUNDING_DECIDES = [
    [[0.2, 0.0, 0.5, 0.5, 0.5, 0.4], [0.0, 0.2, 0.4, 0.2, 0.0, 0.0],
     [0.2, 0.0, 0.4, 0.1, 0.5, 0.1], [0.3, 0.4, 0.5, 0.2, 0.3, 0.2],
     [0.5, 0.2, 0.5, 0.0, 0.4, 0.1], [0.3, 0.5, 0.5, 0.0, 0.2, 0.2]],
    [[0.1, 0.4, 0.0, 0.3], [0.5, 0.5, 0.0, 0.3], [0.4, 0.5, 0.0, 0.3],
     [0.2, 0.5, 0.3, 0.3]],
    [[-0.9, 199.1, 99.1, 199.1, 199.1], [199.7, 99.7, 99.7, 199.7, 99.7],
     [199.1, 99.1, -0.9, 199.1, -0.9], [-0.7, 99.3, 199.3, 199.3, 199.3],
     [-0.6, 199.4, 199.4, 199.4, 199.4]],
]


@pytest.fixture(scope='module')
def munkres114():
    """munkres 1.1.4's assignment function (official calling convention)."""
    try:
        return package_solver(load_munkres_11())
    except FileNotFoundError as err:
        skip_or_fail(str(err))


def mismatches(matrices, expected):
    """(shape, ours, expected) wherever ours differs from ``expected``."""
    return [(cost.shape, ours, cols)
            for cost, ours, cols in zip(
                matrices, map(munkres11_assignment, matrices), expected)
            if not np.array_equal(ours, cols)]


@pytest.mark.parametrize('family', TIE_FAMILIES)
def test_agrees_with_munkres114_on_tie_heavy_matrices(munkres114, family,
                                                      monkeypatch):
    rng = np.random.default_rng(TIE_FAMILIES.index(family))
    matrices = [tie_heavy_costs(rng, family) for _ in range(COUNTS[family])]
    assert max(max(cost.shape) for cost in matrices) == 30
    assert any(cost.shape[0] == 1 for cost in matrices)
    if family == 'grouping':
        # more candidates than groups: padded with 1e10 columns
        assert sum((cost == 1e10).any() for cost in matrices) > 500
    expected = [munkres114(cost) for cost in matrices]
    # the matrices tie: SciPy's tie rule picks another optimum on many
    other = sum(not np.array_equal(linear_sum_assignment(cost)[1], cols)
                for cost, cols in zip(matrices, expected))
    assert other > 0.1 * len(matrices)
    assert mismatches(matrices, expected) == []
    # the same with every matrix worked on as NumPy array / Python floats
    for list_max_size in (0, 64):
        monkeypatch.setattr(assignment, '_LIST_MAX_SIZE', list_max_size)
        assert mismatches(matrices, expected) == []


@pytest.mark.parametrize('list_max_size', [0, 64])
def test_agrees_with_munkres114_where_float_rounding_decides(
        munkres114, list_max_size, monkeypatch):
    """With the matrix worked on as NumPy array (0) or Python floats."""
    monkeypatch.setattr(assignment, '_LIST_MAX_SIZE', list_max_size)
    matrices = [np.array(cost) for cost in ROUNDING_DECIDES]
    assert mismatches(matrices, list(map(munkres114, matrices))) == []


def test_agrees_with_munkres114_on_a_crowded_image(munkres114):
    """The decoder's own matrices: 30 people, up to 30 x 30."""
    heatmaps, tags = crowded_maps(num_people=30, tag_dim=2, seed=1)
    with record_assignments() as calls:
        group_keypoints(heatmaps, tags, AEGroupingConfig(refine=False))
    assert sum(max(cost.shape) == 30 for cost in calls.matrices) >= 10
    assert mismatches(calls.matrices,
                      list(map(munkres114, calls.matrices))) == []


def test_agrees_with_munkres114_beyond_62_columns(munkres114):
    """Zero masks wider than an int64 take another path."""
    rng = np.random.default_rng(7)
    matrices = [rng.integers(0, 9, (rows, 70)) * 1.0 for rows in (2, 65)]
    assert mismatches(matrices, list(map(munkres114, matrices))) == []


def test_every_solver_finds_an_optimum():
    rng = np.random.default_rng(5)
    for _ in range(300):
        cost = tie_heavy_costs(rng, 'grouping', max_size=12)
        _, best = linear_sum_assignment(cost)
        rows = np.arange(cost.shape[0])
        for solver in ASSIGNMENT_SOLVERS:
            cols = min_cost_assignment(cost, solver)
            assert cols.dtype == np.int64 and cols.shape == rows.shape
            assert len(set(cols.tolist())) == len(cols)
            assert cost[rows, cols].sum() == pytest.approx(
                cost[rows, best].sum())


def test_degenerate_shapes():
    assert munkres11_assignment(np.zeros((0, 3))).shape == (0, )
    np.testing.assert_array_equal(
        munkres11_assignment(np.array([[2.0, 1.0, 3.0, 1.0]])), [1])
    np.testing.assert_array_equal(munkres11_assignment(np.ones((3, 3))),
                                  [0, 1, 2])


def test_bad_input():
    with pytest.raises(ValueError, match='rows <= columns'):
        min_cost_assignment(np.zeros((3, 2)))
    with pytest.raises(ValueError, match='finite'):
        min_cost_assignment(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match='assignment_solver'):
        min_cost_assignment(np.zeros((2, 2)), 'hungarian')
    with pytest.raises(ValueError, match='decode_assignment_solver'):
        AEGroupingConfig(assignment_solver='hungarian')


def test_codec_passes_the_solver():
    codec = MultiResolutionAssociativeEmbedding(
        input_size=(256, 256), heatmap_sizes=[(64, 64), (128, 128)],
        decode_assignment_solver='scipy')
    assert codec.grouping.assignment_solver == 'scipy'
    default = MultiResolutionAssociativeEmbedding(
        input_size=(256, 256), heatmap_sizes=[(64, 64), (128, 128)])
    assert default.grouping.assignment_solver == 'munkres-1.1'


def test_benchmark_tool(munkres114, capsys, monkeypatch):
    """tools/benchmark_assignment.py runs, times every solver and checks the
    default against munkres 1.1.4."""
    tool = load_tool('benchmark_assignment')
    monkeypatch.setattr(
        'sys.argv', ['benchmark_assignment.py', '--repeats', '1',
                     '--people', '6', '--crowded', '1'])
    assert tool.main() == 0
    out = capsys.readouterr().out
    assert 'crowded, 6 people: 2 images' in out
    assert '| grouping stage / default | 1.00 |' in out
    assert 'munkres 1.1.4 package' in out
    assert 'munkres 1.1.4 on every recorded matrix: PASS' in out
