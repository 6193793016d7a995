"""The grouping's assignment solvers under test and under the stopwatch.

- ``munkres`` 1.1.4, the solver of the published official results, is
  installed by ``tools/install.sh`` into its own folder of the venv beside
  the pinned ``munkres`` 3.0.0 and loaded from there under another module
  name (:func:`load_munkres_11`).
- Random cost matrices built to tie (:func:`tie_heavy_costs`).
- Synthetic decoder inputs of a crowded image (:func:`crowded_maps`), where
  the assignments are largest.
- A recorder of the assignments the decoder solves, with their time
  (:func:`record_assignments`), and interleaved timings of solvers
  (:func:`time_solvers`) and of the grouping stage (:func:`time_grouping`).
"""
import importlib.util
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, Iterator, List, Sequence, Tuple, Union

import numpy as np

from ..codecs import ae_grouping
from ..codecs.ae_grouping import AEGroupingConfig
from .decoder_cases import tags_to_head_layout

#: Where ``tools/install.sh`` installs munkres 1.1.4 (``pip install
#: --no-deps --target``), inside the running venv.
MUNKRES_11_DIR = Path(sys.prefix) / 'munkres-1.1.4'

Solver = Callable[[np.ndarray], np.ndarray]


def load_munkres_11(folder: Path = MUNKRES_11_DIR) -> ModuleType:
    """``munkres`` 1.1.4 from ``folder``, as the module ``munkres_1_1_4``.

    Raises:
        FileNotFoundError: if it is not installed there.
    """
    path = Path(folder) / 'munkres.py'
    if not path.exists():
        raise FileNotFoundError(
            f'munkres 1.1.4 not found at {path}: run tools/install.sh, '
            'which installs it there (pip install --target)')
    spec = importlib.util.spec_from_file_location('munkres_1_1_4', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if module.__version__ != '1.1.4':
        raise ImportError(f'{path} is munkres {module.__version__}, '
                          'expected 1.1.4')
    return module


def package_solver(module: ModuleType) -> Solver:
    """An assignment function calling ``module.Munkres().compute`` the way
    the official decoder does (``py_max_match``: on the float64 cost array,
    which munkres 1.1.x reduces in place, hence a copy).

    Returns:
        Callable: (n, m) costs -> (n, ) int64 column of each row.
    """

    def solve(cost: np.ndarray) -> np.ndarray:
        pairs = module.Munkres().compute(np.array(cost, np.float64))
        return np.array([col for _, col in pairs], np.int64)

    return solve


# --------------------------------------------------------------------------
# Cost matrices built to tie
# --------------------------------------------------------------------------

TIE_FAMILIES = ('grouping', 'integers', 'tenths')


def tie_heavy_costs(rng: np.random.Generator, family: str = 'grouping',
                    max_size: int = 30) -> np.ndarray:
    """A random cost matrix with many equal-cost optima.

    Families:

    - ``'grouping'``: built like the decoder's (``round(tag distance) * 100
      - value``, float32 tags and values, padded with 1e10 columns when
      candidates outnumber groups): a few people's tags plus noise, so
      rounded distances repeat; values from a few levels; duplicated rows
      (plateau duplicates: same tag and value) and columns (groups with the
      same mean tag); 1 to ``max_size`` candidates and groups, tag dimension
      1 or 2.
    - ``'integers'``: integers 0 to 1 .. 3, rows <= columns.
    - ``'tenths'``: multiples of 0.1 (ties, and float rounding in the
      solver's additions), rows <= columns.

    Returns:
        np.ndarray: (n, m) float64, n <= m.
    """
    rows = int(rng.integers(1, max_size + 1))
    cols = int(rng.integers(1, max_size + 1))
    if family == 'grouping':
        return _grouping_costs(rng, rows, cols)
    rows, cols = min(rows, cols), max(rows, cols)
    if family == 'integers':
        return rng.integers(0, rng.integers(2, 5), (rows, cols)) * 1.0
    if family == 'tenths':
        return rng.integers(0, rng.integers(2, 8), (rows, cols)) / 10
    raise ValueError(f'family must be one of {TIE_FAMILIES}, got {family!r}')


def _grouping_costs(rng: np.random.Generator, num_cand: int,
                    num_groups: int) -> np.ndarray:
    """``round(dist) * 100 - value`` for random candidates and groups."""
    tag_dim = int(rng.integers(1, 3))
    people = rng.normal(0, rng.uniform(0.5, 3), (int(rng.integers(1, 6)),
                                                  tag_dim))
    noise = rng.uniform(0, 0.6)

    def tags(count):
        tag = people[rng.integers(0, len(people), count)]
        tag = (tag + rng.normal(0, noise, tag.shape)).astype(np.float32)
        if rng.random() < 0.5:  # duplicates
            tag[rng.integers(0, count, count // 2)] = tag[rng.integers(
                0, count, count // 2)]
        return tag.astype(np.float64)

    cand_tags, group_tags = tags(num_cand), tags(num_groups)
    levels = np.float32(rng.uniform(0.1, 1, int(rng.integers(1, 6))))
    values = rng.choice(levels, num_cand).astype(np.float64)[:, None]
    diff = cand_tags[:, None] - group_tags[None]
    cost = np.round(np.sqrt((diff * diff).sum(axis=2))) * 100 - values
    if num_cand > num_groups:
        cost = np.concatenate(
            [cost, np.full((num_cand, num_cand - num_groups), 1e10)], axis=1)
    return cost


# --------------------------------------------------------------------------
# A crowded image's decoder inputs
# --------------------------------------------------------------------------


def crowded_maps(num_people: int = 30, num_joints: int = 17,
                 tag_dim: int = 1, size: Tuple[int, int] = (256, 384),
                 seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Decoder inputs that look like a trained model's on a crowded image.

    ``num_people`` people spread over the image, each joint visible with
    probability 0.85, as a Gaussian peak (sigma 2 px, peak 0.3 to 1 in steps
    of 1/32, so that plateaus and equal values occur) carrying the person's
    tag (people about 1 apart, joints +-0.15) within 3 px; background below
    the detection threshold with random tags.

    Returns:
        tuple: heatmaps (K, H, W) and tags (L*K, H, W), float32, in the
        layout the head hands to the decoder.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    heatmaps = rng.uniform(0, 0.05, (num_joints, height, width))
    spread = num_people / 2
    tags = rng.uniform(-spread, spread, (num_joints, height, width, tag_dim))
    person_tags = rng.permutation(num_people)[:, None] - spread + rng.normal(
        0, 0.1, (num_people, tag_dim))
    yy, xx = np.mgrid[:height, :width]
    for person_tag in person_tags:
        centre = rng.uniform([20, 40], [width - 20, height - 40])
        for joint_type in range(num_joints):
            if rng.random() > 0.85:
                continue
            x, y = np.round(centre + rng.normal(0, [12, 25])).astype(int)
            x, y = np.clip(x, 0, width - 1), np.clip(y, 0, height - 1)
            peak = np.round(rng.uniform(0.3, 1.0) * 32) / 32
            box = (slice(max(y - 8, 0), y + 9), slice(max(x - 8, 0), x + 9))
            blob = peak * np.exp(-((xx[box] - x)**2 + (yy[box] - y)**2) / 8)
            heatmaps[joint_type][box] = np.maximum(heatmaps[joint_type][box],
                                                   blob)
            near = (xx[box] - x)**2 + (yy[box] - y)**2 <= 9
            tags[joint_type][box][near] = person_tag + rng.normal(
                0, 0.15, tag_dim)
    return heatmaps.astype(np.float32), tags_to_head_layout(
        tags.astype(np.float32))


# --------------------------------------------------------------------------
# Recording and timing
# --------------------------------------------------------------------------


@dataclass
class AssignmentCalls:
    """What :func:`record_assignments` saw.

    Attributes:
        matrices (list): the (n, m) cost matrices, in call order.
        seconds (float): time spent in the assignment solver.
    """
    matrices: List[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0


@contextmanager
def record_assignments(solver: Solver = None) -> Iterator[AssignmentCalls]:
    """Record the assignments the grouping decoder solves, and their time.

    Within the ``with`` block, every call of the decoder's
    ``min_cost_assignment`` is timed (``time.perf_counter``) and its cost
    matrix kept, e.g. to report the assignment's share of the decode time::

        with record_assignments() as calls:
            group_keypoints(heatmaps, tags, cfg)
        print(calls.seconds, len(calls.matrices))

    Args:
        solver (Callable, optional): Solve with this function instead of the
            configured solver (e.g. :func:`package_solver` of munkres 1.1.4).
    """
    calls = AssignmentCalls()
    configured = ae_grouping.min_cost_assignment

    def timed(cost, *args):
        start = time.perf_counter()
        cols = configured(cost, *args) if solver is None else solver(cost)
        calls.seconds += time.perf_counter() - start
        calls.matrices.append(cost)
        return cols

    ae_grouping.min_cost_assignment = timed
    try:
        yield calls
    finally:
        ae_grouping.min_cost_assignment = configured


def time_solvers(matrices: Sequence[np.ndarray], solvers: Dict[str, Solver],
                 repeats: int = 5) -> Dict[str, float]:
    """Median over ``repeats`` rounds of the CPU seconds (thread time, so
    that other processes on the machine count less) each solver takes for
    all ``matrices``; solvers interleaved within every round."""
    times = {name: [] for name in solvers}
    for _ in range(repeats):
        for name, solve in solvers.items():
            start = time.thread_time()
            for cost in matrices:
                solve(cost)
            times[name].append(time.thread_time() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def grouping_inputs(heatmaps: np.ndarray, tags: np.ndarray,
                    cfg: AEGroupingConfig) -> tuple:
    """The arguments the decoder passes to its grouping stage
    (``_match_by_tag``: peaks after NMS and top-k, order, settings) when
    decoding these maps, for :func:`time_grouping`."""
    captured = []
    grouping = ae_grouping._match_by_tag

    def capture(*args):
        captured.append(args)
        return grouping(*args)

    ae_grouping._match_by_tag = capture
    try:
        ae_grouping.group_keypoints(heatmaps, tags, cfg)
    finally:
        ae_grouping._match_by_tag = grouping
    return captured[0]


def time_grouping(inputs: Sequence[tuple],
                  solvers: Dict[str, Union[str, Solver]],
                  repeats: int = 5) -> Dict[str, float]:
    """Median over ``repeats`` rounds of the CPU seconds (thread time) the
    grouping stage (candidates to groups, assignments included) takes for
    all ``inputs``.

    Args:
        inputs (Sequence[tuple]): :func:`grouping_inputs` of every case.
        solvers (dict): name -> an ``assignment_solver`` setting, or an
            assignment function patched in with :func:`record_assignments`;
            interleaved within every round.

    Returns:
        dict: name -> seconds.
    """
    times = {name: [] for name in solvers}
    for _ in range(repeats):
        for name, solver in solvers.items():
            if isinstance(solver, str):
                runs = [(*args[:-1], replace(args[-1],
                                             assignment_solver=solver))
                        for args in inputs]
                patch = record_assignments()
            else:
                runs, patch = inputs, record_assignments(solver)
            with patch:
                start = time.thread_time()
                for args in runs:
                    ae_grouping._match_by_tag(*args)
                times[name].append(time.thread_time() - start)
    return {name: statistics.median(t) for name, t in times.items()}
