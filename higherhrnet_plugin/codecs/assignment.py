"""Minimum-cost assignment for the grouping decoder, with a chosen tie rule.

The grouping costs (``round(tag distance) * 100 - value``) tie often, and the
optimum the solver picks among equal-cost ones decides who is grouped with
whom. The official HigherHRNet results were produced with ``munkres`` 1.1.x
(1.1.2 / 1.1.4, 2019-2020); ``munkres`` 3.0.0 and SciPy break ties otherwise.
Solvers (``AEGroupingConfig.assignment_solver``):

- ``'munkres-1.1'`` (default): :func:`munkres11_assignment`, a re-implementation
  of ``munkres`` 1.1.x that takes the same steps in the same order on the
  same float64 values, and so returns its assignment for every finite cost
  matrix, ties included; on the decoder's matrices it is faster than
  ``munkres`` 3.0.0 (and 3 to 17 times faster than 1.1.x itself).
- ``'munkres'``: the installed ``munkres`` package (3.0.0 in
  ``requirements/constraints.txt``), called like the official code.
- ``'scipy'``: ``scipy.optimize.linear_sum_assignment``.

See docs/decoder.md for the tie rule and figures.
"""
from typing import List, Optional, Tuple, Union

import numpy as np

ASSIGNMENT_SOLVERS = ('munkres-1.1', 'munkres', 'scipy')

# munkres 1.1.x starts its search for the smallest uncovered value at
# sys.maxsize (an int, 2**63 - 1): only values below it are taken, and used
# as a float64 it is 2**63.
_START_OF_MIN_SEARCH = 2.0**63
# 2**j for the columns j of a zero mask that fits an int64
_BIT_WEIGHTS = 1 << np.arange(62, dtype=np.int64)
# Square sizes up to this are worked on as Python floats, larger ones as
# NumPy arrays (measured crossover of a step 6: about 10).
_LIST_MAX_SIZE = 10


def min_cost_assignment(cost: np.ndarray,
                        solver: str = 'munkres-1.1') -> np.ndarray:
    """Minimum-cost assignment of every row to a distinct column.

    Args:
        cost (np.ndarray): (n, m) finite costs, n <= m.
        solver (str): One of :data:`ASSIGNMENT_SOLVERS`; they differ only in
            the optimum they pick among equal-cost ones.

    Returns:
        np.ndarray: (n, ) int64 column assigned to each row.
    """
    cost = np.asarray(cost, np.float64)
    if cost.ndim != 2 or cost.shape[0] > cost.shape[1]:
        raise ValueError('min_cost_assignment needs a 2-D cost matrix with '
                         f'rows <= columns, got shape {cost.shape}')
    if solver == 'munkres-1.1':
        return munkres11_assignment(cost)
    if solver == 'munkres':
        from munkres import Munkres
        pairs = Munkres().compute(cost)  # (row, col), sorted by row
        return np.array([col for _, col in pairs], np.int64)
    if solver == 'scipy':
        from scipy.optimize import linear_sum_assignment
        return linear_sum_assignment(cost)[1].astype(np.int64)
    raise ValueError(f'assignment_solver must be one of '
                     f'{ASSIGNMENT_SOLVERS}, got {solver!r}')


def munkres11_assignment(cost: np.ndarray) -> np.ndarray:
    """The assignment ``munkres`` 1.1.x returns for ``cost``, ties included.

    ``munkres`` 1.1.x (``Munkres().compute``) pads the matrix to a square
    with zero rows, reduces each row by its minimum (step 1), stars zeros
    greedily in row-major order (step 2), then alternates covering
    (step 3), priming (step 4), augmenting (step 5) and adjusting the matrix
    (step 6). This function takes exactly those steps, in that order, with
    the same float64 operations on every entry, but keeps the zeros of each
    row as a bit mask and adjusts the matrix row by row (small matrices, as
    Python floats) or with whole-matrix NumPy operations (larger ones)
    instead of scanning it cell by cell for every step. The quirks that
    decide ties are kept:

    - step 4 resumes its search for an uncovered zero at the row of the
      last prime and the column of that row's star, wraps around, and in
      the first row with uncovered zeros takes the *last* one in cyclic
      column order from that column; after step 6 it restarts at (0, 0);
    - step 6 adds the minimum to covered rows, then subtracts it from
      uncovered columns, so a covered-row / uncovered-column entry becomes
      ``(c + m) - m``, which is not always ``c``.

    A single row is a proven shortcut: step 2 stars its first minimum and
    the zero padding rows take the other columns, so the answer is
    ``argmin``.

    Args:
        cost (np.ndarray): (n, m) finite float64 costs, n <= m.

    Returns:
        np.ndarray: (n, ) int64 column of each row.
    """
    num_rows, size = cost.shape
    if not np.isfinite(cost).all():
        raise ValueError('munkres11_assignment needs finite costs')
    if num_rows == 0:
        return np.zeros(0, np.int64)
    if num_rows == 1:
        return cost.argmin(axis=1).astype(np.int64)
    matrix = (_ListMatrix if size <= _LIST_MAX_SIZE else _ArrayMatrix)(cost)
    star_col = _Munkres11(matrix).solve()
    return np.array(star_col[:num_rows], np.int64)


class _Munkres11:
    """Steps 2 to 6 of ``munkres`` 1.1.x.

    Args:
        matrix (_ListMatrix | _ArrayMatrix): The square matrix after
            step 1; adjusted in place.
    """

    def __init__(self, matrix: Union['_ListMatrix', '_ArrayMatrix']):
        self.matrix = matrix
        self.size = matrix.size
        self.star_col = [-1] * self.size
        self.star_row = [-1] * self.size

    def solve(self) -> List[int]:
        """Steps 2 to 6; returns the starred column of every row."""
        num_stars = self._star_greedily()
        while num_stars < self.size:
            self._augment(*self._prime_until_free_row())
            num_stars += 1
        return self.star_col

    def _star_greedily(self) -> int:
        """Step 2: row by row, star the first zero in a column without star.

        Returns:
            int: number of stars.
        """
        starred = 0  # bit mask of columns
        count = 0
        for row, zeros in enumerate(self.matrix.zeros):
            free = zeros & ~starred
            if free:
                col = (free & -free).bit_length() - 1  # lowest set bit
                self.star_col[row] = col
                self.star_row[col] = row
                starred |= 1 << col
                count += 1
        return count

    def _prime_until_free_row(self) -> Tuple[List[int], int, int]:
        """Steps 3, 4 and 6: cover the starred columns, then prime
        uncovered zeros (covering their row, uncovering their star's column)
        until one lies in a row without a star.

        Returns:
            tuple: the primed column of every row (-1 if none), and the row
            and column of that last prime.
        """
        size = self.size
        prime_col = [-1] * size
        row_covered = [False] * size
        col_covered = [col >= 0 for col in self.star_row]
        # uncovered columns as a bit mask, for the zero search
        open_cols = sum(1 << col for col in range(size)
                        if not col_covered[col])
        row = col = 0
        while True:
            hit = self._find_uncovered_zero(row_covered, open_cols, row, col)
            if hit is None:  # step 6, then step 4 starts again at (0, 0)
                self.matrix.adjust(row_covered, col_covered)
                row = col = 0
                continue
            row, col = hit
            prime_col[row] = col
            star = self.star_col[row]
            if star < 0:
                return prime_col, row, col
            row_covered[row] = True
            col_covered[star] = False
            open_cols |= 1 << star
            col = star

    def _augment(self, prime_col: List[int], row: int, col: int) -> None:
        """Step 5: from the prime at (row, col), alternately through the
        star in the prime's column and the prime in the star's row, star
        every prime and unstar every star of that path."""
        while True:
            next_row = self.star_row[col]
            self.star_col[row] = col
            self.star_row[col] = row
            if next_row < 0:
                return
            row = next_row
            col = prime_col[row]

    def _find_uncovered_zero(self, row_covered: List[bool], open_cols: int,
                             first_row: int,
                             first_col: int) -> Optional[Tuple[int, int]]:
        """munkres 1.1.x's ``__find_a_zero(first_row, first_col)``.

        Rows are scanned cyclically from ``first_row``; in the first
        uncovered row with an uncovered zero, columns are scanned cyclically
        from ``first_col`` to the end, keeping the last zero seen.
        """
        before_first = (1 << first_col) - 1
        size = self.size
        zero_masks = self.matrix.zeros
        for step in range(size):
            row = first_row + step
            if row >= size:
                row -= size
            if row_covered[row]:
                continue
            zeros = zero_masks[row] & open_cols
            if zeros:
                # last in the order first_col .. size-1, 0 .. first_col-1
                wrapped = zeros & before_first
                return row, (wrapped or zeros).bit_length() - 1
        return None


class _ListMatrix:
    """The working matrix as lists of Python floats (the same IEEE float64
    arithmetic as NumPy), for small sizes where NumPy's per-call overhead
    would dominate.

    Args:
        cost (np.ndarray): (n, m) float64, n <= m; padded with zero rows and
            reduced by row minima (step 1).

    Attributes:
        size (int): m.
        zeros (List[int]): per row, the bit mask of its zero entries.
    """

    def __init__(self, cost: np.ndarray):
        num_rows, self.size = cost.shape
        self.rows, self.zeros = [], []
        for row in cost.tolist():
            least = min(row)
            row = [value - least for value in row]
            self.rows.append(row)
            self.zeros.append(
                sum(1 << col for col, value in enumerate(row) if value == 0))
        for _ in range(self.size - num_rows):
            self.rows.append([0.0] * self.size)
            self.zeros.append((1 << self.size) - 1)

    def adjust(self, row_covered: List[bool],
               col_covered: List[bool]) -> None:
        """Step 6: add the smallest uncovered value to every covered row,
        then subtract it from every uncovered column.

        Entries stay >= 0 and the smallest value is > 0 (no uncovered zero
        is left when step 6 runs), so zeros can only appear in uncovered
        columns, and only the zeros of uncovered rows in covered columns
        stay as they were.
        """
        open_cols = [col for col in range(self.size) if not col_covered[col]]
        smallest = min(
            min(min(row[col] for col in open_cols)
                for row, covered in zip(self.rows, row_covered)
                if not covered), _START_OF_MIN_SEARCH)
        kept = sum(1 << col for col in range(self.size) if col_covered[col])
        for index, (row, covered) in enumerate(zip(self.rows, row_covered)):
            if covered:
                row[:] = [value + smallest for value in row]
                zeros = 0
            else:
                zeros = self.zeros[index] & kept
            for col in open_cols:
                value = row[col] - smallest
                row[col] = value
                if value == 0:
                    zeros |= 1 << col
            self.zeros[index] = zeros


class _ArrayMatrix:
    """The working matrix as a NumPy array, for larger sizes.

    Args:
        cost (np.ndarray): (n, m) float64, n <= m; padded with zero rows and
            reduced by row minima (step 1).

    Attributes:
        size (int): m.
        zeros (List[int]): per row, the bit mask of its zero entries.
    """

    def __init__(self, cost: np.ndarray):
        num_rows, self.size = cost.shape
        self.values = np.zeros((self.size, self.size))
        np.subtract(cost, cost.min(axis=1, keepdims=True),
                    out=self.values[:num_rows])
        self.zeros = _zero_masks(self.values)

    def adjust(self, row_covered: List[bool],
               col_covered: List[bool]) -> None:
        """Step 6, as :meth:`_ListMatrix.adjust`."""
        values = self.values
        rows = np.array(row_covered)
        open_cols = ~np.array(col_covered)
        smallest = min(float(values[~rows][:, open_cols].min()),
                       _START_OF_MIN_SEARCH)
        values[rows] += smallest
        values[:, open_cols] -= smallest
        self.zeros = _zero_masks(values)


def _zero_masks(matrix: np.ndarray) -> List[int]:
    """The zeros of every row of an (n, n) array as an int bit mask (bit j
    set if ``matrix[i, j] == 0``)."""
    is_zero = matrix == 0
    size = matrix.shape[1]
    if size <= _BIT_WEIGHTS.size:
        return (is_zero @ _BIT_WEIGHTS[:size]).tolist()
    packed = np.packbits(is_zero, axis=1, bitorder='little')
    return [int.from_bytes(row.tobytes(), 'little') for row in packed]
