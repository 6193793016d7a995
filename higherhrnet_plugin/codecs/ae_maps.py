"""How the AE grouping decoder reads the maps: NMS, top-k, and the pixel
reads of adjustment and refinement, on the CPU (:class:`HostMaps`, NumPy)
or on the maps' own device (:class:`DeviceMaps`, PyTorch).

Both take the maps in the head's layout, heatmaps (K, H, W) and tags
(L*K, H, W) with channel ``l * K + k``, and neither copies a whole map.

On the CPU the decoder must give the official results bit for bit, which
fixes two orders among equal values: the order of tied peaks in
``torch.topk`` of the suppressed map, and the first pixel in raster order
among equal refinement scores. Both are kept while reading only a small part
of the maps, guided by the maximum of every ``TILE_SIDE`` square tile:

- **Top-k.** Only peaks above the detection threshold are grouped; if
  their values are distinct, their official order is that of their values,
  and they lie in the tiles whose maximum is above the threshold. Tied
  values take ``topk``'s order: on a row of n >= 64 k values, PyTorch's CPU
  ``topk`` is ``std::partial_sort``, a heap of the first k elements, then,
  in order, every element that compares greater than the heap's smallest
  replaces it; elements that do not leave no trace. The heap's smallest is
  the k-th largest value seen so far, so an element at or below the k-th
  largest value of *any* set of earlier elements is never inserted.
  Dropping such elements, keeping the others in raster order, gives
  ``topk`` the same heap operations: the same values, indices and order,
  ties included (:func:`peak_candidates`, :func:`heap_candidates`).
- **Refinement.** A pixel's score ``heat - round(|tag - person tag|)`` is
  never above its heat, and the rounded distance is at least the largest
  gap along the tag dimensions; :meth:`HostMaps.refinement_argmax` scores
  only the pixels these bounds cannot rule out.

Three steps run in C where the package was built with a compiler
(``_ae_kernels.c``: tile maxima, the local maxima of tiles, and the
refinement scan) and in NumPy otherwise, with the same results; the tests
run both.

On another device, :class:`DeviceMaps` runs NMS and top-k there for the
whole batch (``max_pool2d``, ``topk``, as the official code does on a GPU)
and brings back only the peaks; adjustment and refinement gather what they
need on the device.

Shapes: K joint types, H x W maps, L tag dimensions.
"""
import contextlib
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

try:  # compiled by setup.py where a C compiler is found
    from . import _ae_kernels
except ImportError:  # the NumPy path gives the same results
    _ae_kernels = None

#: Side of the square tiles whose maxima bound the searches.
TILE_SIDE = 8
#: Refinement: tiles (with the largest maxima) whose pixels are scored in
#: each round by heat; more rounds cost gathers, fewer score pixels that
#: cannot win.
REFINE_TILE_COUNTS = (32, 256)
# Tiles whose local maxima are read at once: a batch's index and value
# arrays stay under 4 MB, above which NumPy asks for huge pages, whose first
# touch can cost more than the work (up to 4 ms for 3754 tiles here).
_TILES_PER_BATCH = 2048
# Rows of tiles of the first band of the top-k search, whose suppressed
# values are all kept (the initial heap is among them).
_FIRST_BAND_TILE_ROWS = 2
# Refinement by tag distance: slack on the radius of the band of tags
# searched, far above float32 rounding of the pixel's distance.
_RADIUS_SLACK = (1e-5, 1e-6)
# Tag dimensions whose gaps (a box around the person tag) bound the distance
# from below: in the heat rounds, whose tags are gathered anyway, the first
# two (the second makes the bands about 40 times sparser on uniform
# background tags); in a whole-heatmap search, the first only (reading a
# second plane per pair costs more than it saves).
_BOX_DIMS = 2
_SEARCH_DIMS = 1
# Heat rounds with at most this many (pair, pixel) combinations score them
# all: a superset of the box, in fewer NumPy calls.
_DENSE_SCORING = 1 << 14
# Device refinement: pixels scored per chunk (pairs x pixels).
_DEVICE_CHUNK = 1 << 24


# --------------------------------------------------------------------------
# NMS building blocks
# --------------------------------------------------------------------------


def _sliding_max(x: np.ndarray, size: int, stride: int,
                 out: Optional[np.ndarray] = None) -> np.ndarray:
    """``y[i] = max(x[i], x[i + stride], ..., x[i + (size - 1) * stride])``.

    Windows of 1, 2, 4, ... elements are built by doubling; the last step
    combines two overlapping power-of-two windows, so a window costs
    O(log size) passes. Working on the flat array makes every pass one
    contiguous 1-D operation (a window along W has ``stride`` 1, along H the
    row length), about three times faster than shifting 2-D views along W.

    Args:
        x (np.ndarray): (n, ) float32.
        size (int): Window length in elements.
        stride (int): Distance between the elements of a window.
        out (np.ndarray, optional): (n - (size - 1) * stride, ) output.

    Returns:
        np.ndarray: (n - (size - 1) * stride, ) window maxima.
    """
    shifts, width = [], 1
    while width * 2 <= size:
        shifts.append(width)
        width *= 2
    if width < size:
        shifts.append(size - width)  # <= width: the two windows overlap
    if not shifts:  # size 1
        if out is None:
            return x
        out[:] = x
        return out
    # two buffers, written in turn: a new array per pass would fault in
    # fresh pages each time, which costs more than the pass itself
    buffers = [np.empty(x.size, np.float32) for _ in shifts[:2]]
    for step, shift in enumerate(shifts):
        length = x.size - shift * stride
        target = (out if step == len(shifts) - 1 and out is not None else
                  buffers[step % 2][:length])
        x = np.maximum(x[:length], x[shift * stride:], out=target)
    return x


def _window_max(stack: np.ndarray, kernel: int) -> np.ndarray:
    """Maxima of the ``kernel x kernel`` windows that fit in each image.

    Args:
        stack (np.ndarray): (n, R, C) float32, C-contiguous.
        kernel (int): Window side.

    Returns:
        np.ndarray: (n, R - kernel + 1, C - kernel + 1), entry (i, r, c)
        the maximum of ``stack[i, r:r + kernel, c:c + kernel]`` (a view).
    """
    num, rows, cols = stack.shape
    along_w = _sliding_max(stack.ravel(), kernel, 1)
    # flat index (i * R + r) * C + c holds the window at (i, r, c); windows
    # that run past a row or an image are garbage and cut off below
    result = np.empty(num * rows * cols, np.float32)
    _sliding_max(along_w, kernel, cols,
                 out=result[:along_w.size - (kernel - 1) * cols])
    return result.reshape(num, rows, cols)[:, :rows - kernel + 1,
                                           :cols - kernel + 1]


def _local_max_map(heatmap: np.ndarray, kernel: int,
                   padded: Optional[np.ndarray] = None) -> np.ndarray:
    """Same values as ``max_pool2d(heatmap, kernel, 1, kernel // 2)``.

    Args:
        heatmap (np.ndarray): (H, W) float32.
        kernel (int): Odd window side.
        padded (np.ndarray, optional): (H + kernel - 1, W + kernel - 1)
            float32 scratch with a -inf border, reused between maps.

    Returns:
        np.ndarray: (H, W) neighbourhood maxima (a strided view).
    """
    pad = kernel // 2
    height, width = heatmap.shape
    if padded is None:
        # max_pool2d pads with -inf: the border never wins the maximum
        padded = np.full((height + 2 * pad, width + 2 * pad), -np.inf,
                         np.float32)
    padded[pad:pad + height, pad:pad + width] = heatmap
    return _window_max(padded[None], kernel)[0]


def suppress(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """NMS: keep the pixels equal to their neighbourhood maximum, zero others.

    Shifted maxima in NumPy, one map at a time so that the temporaries stay
    in cache: several times faster than PyTorch's stride-1 ``max_pool2d`` on
    CPU, and single-threaded, so nothing stalls when the cores are shared.

    Args:
        heatmaps (np.ndarray): (K, H, W) float32.
        kernel (int): Odd window side.

    Returns:
        np.ndarray: (K, H, W) float32, the official
        ``det * eq(max_pool2d(det, kernel, 1, kernel // 2), det).float()``
        bit for bit.
    """
    _, height, width = heatmaps.shape
    padded = np.full((height + kernel - 1, width + kernel - 1), -np.inf,
                     np.float32)
    peaks = np.empty(heatmaps.shape, np.float32)
    for joint_type, heatmap in enumerate(heatmaps):
        local_max = _local_max_map(heatmap, kernel, padded)
        np.multiply(heatmap, local_max == heatmap, out=peaks[joint_type])
    return peaks


def tile_reduce(maps: np.ndarray, side: int,
                reduce: np.ufunc = np.maximum) -> np.ndarray:
    """Reduce every ``side x side`` tile of each map (tiles of the last row
    and column are cut by the map's edge).

    The rows of each band of tiles are reduced first, by PyTorch's
    ``amax`` / ``amin`` over the middle axis of a (n, bands, side, W) view:
    it reads every element once, where NumPy's reduction over that axis is
    several times slower (NumPy still serves read-only maps, on which
    ``torch.from_numpy`` warns); the columns of the (n, bands, W) result
    follow.

    Args:
        maps (np.ndarray): (n, H, W).
        side (int): Tile side.
        reduce (np.ufunc): ``np.maximum`` or ``np.minimum``.

    Returns:
        np.ndarray: (n, ceil(H / side), ceil(W / side)).
    """
    num, height, width = maps.shape
    rows, cols = -(-height // side), -(-width // side)
    full_rows, full_cols = height // side, width // side
    by_row = np.empty((num, rows, width), maps.dtype)
    bands = maps[:, :full_rows * side].reshape(num, full_rows, side, width)
    if full_rows and maps.flags.writeable:  # torch warns on read-only
        bands = torch.from_numpy(bands)
        by_row[:, :full_rows] = (bands.amax(dim=2) if reduce is np.maximum
                                 else bands.amin(dim=2)).numpy()
    else:
        by_row[:, :full_rows] = reduce.reduce(bands, axis=2)
    if full_rows < rows:
        by_row[:, -1] = reduce.reduce(maps[:, full_rows * side:], axis=1)
    out = np.empty((num, rows, cols), maps.dtype)
    body = out[:, :, :full_cols]
    body[...] = by_row[:, :, 0:full_cols * side:side]
    for offset in range(1, side):
        reduce(body, by_row[:, :, offset:full_cols * side:side], out=body)
    if full_cols < cols:
        out[:, :, -1] = reduce.reduce(by_row[:, :, full_cols * side:],
                                      axis=2)
    return out


class TileMaxima:
    """The maximum of every ``side x side`` tile of each heatmap (NaN where
    a tile holds one), by the compiled kernel where it is built, else by
    :func:`tile_reduce`.

    Args:
        heatmaps (np.ndarray): (K, H, W) float32.
        side (int): Tile side.

    Attributes:
        max (np.ndarray): (K, rows, cols) float32 tile maxima.
    """

    def __init__(self, heatmaps: np.ndarray, side: int = TILE_SIDE):
        num, self.height, self.width = heatmaps.shape
        self.side = side
        self.rows, self.cols = -(-self.height // side), -(-self.width // side)
        if _kernel_reads(heatmaps) and heatmaps.size:
            self.max = np.empty((num, self.rows, self.cols), np.float32)
            _ae_kernels.tile_max(heatmaps, heatmaps.shape + (side, ),
                                 self.max)
        else:
            self.max = tile_reduce(heatmaps, side)

    def flat_pixels(self, tiles: np.ndarray) -> np.ndarray:
        """Flat pixel indices of the tiles with flat indices ``tiles``
        (n, ), tile after tile (a cut tile repeats its edge pixels)."""
        if self.height % self.side or self.width % self.side:
            y, x = self.pixels(*np.divmod(tiles, self.cols))
            return (y[:, :, None] * self.width + x[:, None, :]).ravel()
        row, col = np.divmod(tiles, self.cols)
        corner = (row * self.width + col) * self.side
        offset = (np.arange(self.side)[:, None] * self.width +
                  np.arange(self.side)).ravel()
        return (corner[:, None] + offset).ravel()

    def pixels(self, tile_row: np.ndarray, tile_col: np.ndarray,
               margin: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """Pixel rows and columns of tiles, widened by ``margin``, clamped
        to the map (a pixel past an edge repeats the edge pixel).

        Args:
            tile_row, tile_col (np.ndarray): (n, ) tile positions.

        Returns:
            tuple: (n, side + 2 margin) rows y and columns x.
        """
        offset = np.arange(-margin, self.side + margin)
        y = np.clip(tile_row[:, None] * self.side + offset, 0,
                    self.height - 1)
        x = np.clip(tile_col[:, None] * self.side + offset, 0,
                    self.width - 1)
        return y, x


# --------------------------------------------------------------------------
# Top-k of the suppressed maps
# --------------------------------------------------------------------------


class PeakCandidates(NamedTuple):
    """What :func:`topk_of_candidates` needs to find the official top-k.

    Attributes:
        values (np.ndarray): (K, n) float32 suppressed values, padded with
            -inf.
        flat (np.ndarray, optional): (K, n) int64 their flat pixel indices;
            None if column i is pixel i (whole suppressed maps).
        in_heap_order (bool): True if the rows hold every element that
            ``topk`` inserts into its heap, in raster order (their ``topk``
            is the official one, ties included); False if they hold the
            peaks above the detection threshold, all of distinct value
            among the top k (their descending order is the official one).
    """
    values: np.ndarray
    flat: Optional[np.ndarray]
    in_heap_order: bool


def peak_candidates(heatmaps: np.ndarray, tiles: TileMaxima, kernel: int,
                    k: int, threshold: float) -> PeakCandidates:
    """The peaks of the suppressed heatmaps that decide the official top-k
    above ``threshold`` (see the module docstring).

    Only peaks above the detection threshold are grouped, and when their
    values are distinct (as on a trained model's maps) their order is that
    of their values: they are searched only in the tiles whose maximum is
    above the threshold (>= 0, so that the zeros of the suppressed maps are
    not above it). Tied values (plateaus) make the order that of ``topk``'s
    heap, and :func:`heap_candidates` finds what decides it.

    Args:
        heatmaps (np.ndarray): (K, H, W) float32.
        tiles (TileMaxima): Their tile maxima.
        kernel (int): Odd NMS window side.
        k (int): Peaks wanted per joint type.
        threshold (float): Peaks at or below it are not used.

    Returns:
        PeakCandidates
    """
    if kernel % 2 != 1:
        raise ValueError(f'nms_kernel must be odd, got {kernel}')
    if threshold >= 0 and not np.isnan(tiles.max).any():
        # compared in float64, as the grouping compares them
        joint, row, col = np.nonzero(
            tiles.max.astype(np.float64) > threshold)
        joint, flat, value = _tile_local_maxima(
            heatmaps, tiles, joint, row, col, kernel,
            np.full(joint.size, threshold, np.float64))
        values, flat = _rows_by_joint(joint, flat, value,
                                      heatmaps.shape[0], order=-value)
        top = values[:, :k + 1]
        if not ((top[:, 1:] == top[:, :-1]) & (top[:, 1:] > -np.inf)).any():
            return PeakCandidates(values[:, :k], flat[:, :k], False)
    return heap_candidates(heatmaps, tiles, kernel, k)


def heap_candidates(heatmaps: np.ndarray, tiles: TileMaxima, kernel: int,
                    k: int) -> PeakCandidates:
    """The elements of each suppressed heatmap that ``torch.topk(k)`` can
    take into its heap, in raster order (see the module docstring).

    The first ``_FIRST_BAND_TILE_ROWS`` rows of tiles are suppressed in
    full. The rest is searched in bands of tile rows of doubling height:
    a band's tiles whose maximum is above ``bound``, the k-th largest value
    found so far, are suppressed (with their neighbourhood) and their local
    maxima above ``bound`` kept. Maps too small for the heap algorithm, with
    NaNs, or whose first band leaves ``bound`` below 0 (then zeros would
    count) are suppressed whole.
    """
    num_joints, height, width = heatmaps.shape
    first_rows = _FIRST_BAND_TILE_ROWS * tiles.side
    whole = (k * 64 > height * width or first_rows * width < k
             or first_rows >= height or np.isnan(tiles.max).any())
    if not whole:
        head = suppress(heatmaps[:, :first_rows + kernel // 2],
                        kernel)[:, :first_rows].reshape(num_joints, -1)
        # (K, k) the largest values found so far; their minimum is `bound`
        largest = -np.partition(-head, k - 1, axis=1)[:, :k]
        whole = bool((largest.min(axis=1) < 0).any())
    if whole:
        return PeakCandidates(
            suppress(heatmaps, kernel).reshape(num_joints, -1), None, True)

    found = []  # (joint type, flat index, value) per band
    start, height_in_tiles = _FIRST_BAND_TILE_ROWS, _FIRST_BAND_TILE_ROWS
    while start < tiles.rows:
        stop = min(start + height_in_tiles, tiles.rows)
        bound = largest.min(axis=1)
        joint, row, col = np.nonzero(
            tiles.max[:, start:stop] > bound[:, None, None])
        band = _tile_local_maxima(heatmaps, tiles, joint, row + start, col,
                                  kernel, bound[joint])
        found.append(band)
        new_values, _ = _rows_by_joint(*band, num_joints)
        largest = -np.partition(
            -np.concatenate([largest, new_values], axis=1), k - 1,
            axis=1)[:, :k]
        start, height_in_tiles = stop, 2 * height_in_tiles
    joint, flat, value = (np.concatenate(part) for part in zip(*found))
    values, flat = _rows_by_joint(joint, flat, value, num_joints, order=flat,
                                  min_length=64 * k - head.shape[1])
    # the first band first: raster order
    return PeakCandidates(
        np.concatenate([head, values], axis=1),
        np.concatenate([
            np.broadcast_to(np.arange(head.shape[1]), head.shape), flat
        ], axis=1), True)


def _tile_local_maxima(heatmaps: np.ndarray, tiles: TileMaxima,
                       joint: np.ndarray, tile_row: np.ndarray,
                       tile_col: np.ndarray, kernel: int,
                       bound: np.ndarray
                       ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local maxima above ``bound`` inside the given tiles, tile after
    tile, row by row: by the compiled kernel where it is built, else read
    in batches of ``_TILES_PER_BATCH`` tiles (same results).

    Args:
        joint, tile_row, tile_col (np.ndarray): (n, ) tiles.
        bound (np.ndarray): (n, ) per tile.

    Returns:
        tuple: (m, ) joint types, flat pixel indices and values.
    """
    if _kernel_reads(heatmaps):
        room = joint.size * tiles.side**2
        found = (np.empty(room, np.int64), np.empty(room, np.int64),
                 np.empty(room, np.float32))
        count = _ae_kernels.local_maxima(
            heatmaps, heatmaps.shape + (tiles.side, kernel),
            *(a.astype(np.int64) for a in (joint, tile_row, tile_col)),
            _float32_below(bound), *found)
        return tuple(a[:count] for a in found)
    parts = [
        _batch_local_maxima(heatmaps, tiles, joint[batch], tile_row[batch],
                            tile_col[batch], kernel, bound[batch])
        for batch in (slice(start, start + _TILES_PER_BATCH)
                      for start in range(0, max(joint.size, 1),
                                         _TILES_PER_BATCH))
    ]
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate(part) for part in zip(*parts))


def _batch_local_maxima(heatmaps: np.ndarray, tiles: TileMaxima,
                        joint: np.ndarray, tile_row: np.ndarray,
                        tile_col: np.ndarray, kernel: int,
                        bound: np.ndarray
                        ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_tile_local_maxima` of one batch of tiles.

    Each tile is read with a margin of ``kernel // 2`` pixels; margin pixels
    past the map's edge repeat the edge pixel, which lies in the same
    window, so window maxima equal ``max_pool2d``'s with -inf padding.
    """
    pad, side = kernel // 2, tiles.side
    _, height, width = heatmaps.shape
    y, x = tiles.pixels(tile_row, tile_col, pad)
    index = ((joint[:, None, None] * height + y[:, :, None]) * width +
             x[:, None, :])
    block = heatmaps.reshape(-1).take(index)  # (n, side + 2 pad, ...)
    local_max = _window_max(block, kernel)
    centre = block[:, pad:pad + side, pad:pad + side]
    keep = (centre == local_max) & (centre > _float32_below(bound)[:, None,
                                                                     None])
    # cut tiles: drop the repeated edge pixels
    keep &= (tile_row[:, None] * side + np.arange(side) < height)[:, :, None]
    keep &= (tile_col[:, None] * side + np.arange(side) < width)[:, None, :]
    tile, row, col = np.unravel_index(np.flatnonzero(keep), keep.shape)
    flat = y[tile, row + pad] * width + x[tile, col + pad]
    return joint[tile], flat, centre[tile, row, col]


def kernels_built() -> bool:
    """Whether the compiled kernels (``_ae_kernels``) are in use."""
    return _ae_kernels is not None


@contextlib.contextmanager
def numpy_path() -> Iterator[None]:
    """Decode with NumPy alone inside the block, as where the kernels are
    not built (for benchmarks; not thread-safe)."""
    global _ae_kernels
    saved, _ae_kernels = _ae_kernels, None
    try:
        yield
    finally:
        _ae_kernels = saved


def _kernel_reads(*arrays: np.ndarray) -> bool:
    """Whether the compiled kernel is built and can read ``arrays`` in
    place (float32, C-contiguous)."""
    return _ae_kernels is not None and all(
        a.dtype == np.float32 and a.flags.c_contiguous for a in arrays)


def _float32_below(bound: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each bound: for a float32 ``x``,
    ``x > bound`` exactly when ``x > _float32_below(bound)``, so float64
    bounds (the detection threshold) compare without converting ``x``."""
    if bound.dtype == np.float32:
        return bound
    below = bound.astype(np.float32)
    return np.where(below > bound, np.nextafter(below, np.float32(-np.inf)),
                    below)


def _rows_by_joint(joint: np.ndarray, flat: np.ndarray, value: np.ndarray,
                   num_joints: int, order: Optional[np.ndarray] = None,
                   min_length: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Scatter (joint, flat, value) triples into one row per joint type,
    sorted by ``order`` within a row, padded with -inf (values) and 0.

    Returns:
        tuple: values (K, n) and flat indices (K, n), n >= ``min_length``.
    """
    counts = np.bincount(joint, minlength=num_joints)
    length = max(int(counts.max(initial=0)), min_length, 1)
    values = np.full((num_joints, length), -np.inf, np.float32)
    flat_of = np.zeros((num_joints, length), np.int64)
    sort = (np.argsort(joint, kind='stable') if order is None else
            np.lexsort((order, joint)))
    column = np.arange(joint.size) - np.repeat(
        np.cumsum(counts) - counts, counts)
    values[joint[sort], column] = value[sort]
    flat_of[joint[sort], column] = flat[sort]
    return values, flat_of


def topk_of_candidates(candidates: PeakCandidates,
                       k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The official top-k peaks from :func:`peak_candidates`.

    Returns:
        tuple: values (K, k') float32 (descending) and flat pixel indices
        (K, k') int64, k' = min(k, H*W): ``torch.topk`` of the suppressed
        maps, tie order included, wherever the value is above the detection
        threshold (entries at or below it may differ and are not used).
    """
    values, flat, in_heap_order = candidates
    if not in_heap_order:  # already sorted, distinct
        return values, flat
    top, position = torch.from_numpy(values).topk(
        min(k, values.shape[1]), dim=1)
    position = position.numpy()
    if flat is not None:
        position = np.take_along_axis(flat, position, axis=1)
    return top.numpy(), position


# --------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------


def quarter_offsets(right: np.ndarray, left: np.ndarray, down: np.ndarray,
                    up: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """+-0.25 toward the higher horizontal / vertical neighbour; ties go to
    -0.25.

    Returns:
        tuple: dx, dy float32 in {-0.25, 0.25}.
    """
    quarter = np.float32(0.25)
    return (np.where(right > left, quarter, -quarter),
            np.where(down > up, quarter, -quarter))


def refinement_scores(heat: np.ndarray, tags: np.ndarray,
                      person_tag: np.ndarray) -> np.ndarray:
    """``heat - round(|tag - person_tag|)``, broadcast.

    Same float32 operations and summation order as the official
    ``np.round(((tag - t) ** 2).sum(axis=2) ** 0.5)``: a sum over fewer than
    8 tag dimensions is a plain left-to-right sum, done here plane by plane.

    Args:
        heat (np.ndarray): (...) float32 heatmap values.
        tags (np.ndarray): (L, ...) float32 tag planes.
        person_tag (np.ndarray): (L, ...) float32 person tags, broadcast
            against ``tags``.

    Returns:
        np.ndarray: float32 scores, the broadcast shape without L.
    """
    diff = tags - person_tag
    diff *= diff
    if diff.shape[0] >= 8:  # numpy sums 8 and more pairwise
        sq_dist = np.ascontiguousarray(np.moveaxis(diff, 0, -1)).sum(-1)
    else:
        sq_dist = diff[0]
        for term in diff[1:]:
            sq_dist += term
    np.sqrt(sq_dist, out=sq_dist)
    np.round(sq_dist, out=sq_dist)
    return np.subtract(heat, sq_dist, out=sq_dist)


def _levels(tile_max: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """Per row of tile maxima (T, tiles) and per count, the ``count``-th
    largest; where more than twice as many tiles reach it (e.g. a flat
    background), the next larger value, so that a round reads about
    ``count`` tiles.

    Returns:
        np.ndarray: (len(counts), T), from one partition of the rows.
    """
    kth = [count - 1 for count in counts]
    levels = -np.partition(-tile_max, kth, axis=1)[:, kth].T
    for level, count in zip(levels, counts):
        crowded = (tile_max >= level[:, None]).sum(axis=1) > 2 * count
        if crowded.any():
            above = np.where(tile_max > level[:, None], tile_max, np.inf)
            level[:] = np.where(crowded, above.min(axis=1), level)
    return levels


def tag_gap(tags: np.ndarray, person_tag: np.ndarray,
            out: Optional[List[np.ndarray]] = None,
            dims: int = _BOX_DIMS) -> np.ndarray:
    """The largest ``|tag_l - t_l|`` over the first ``dims`` tag
    dimensions, a lower bound of the tag distance, from the same float32
    differences as :func:`refinement_scores`.

    Args:
        tags (np.ndarray): (L, ...) float32 tag planes.
        person_tag (np.ndarray): (L, ...) float32, broadcast against
            ``tags``.
        out (tuple, optional): two float32 arrays of the result's shape
            to reuse (a fresh array per call faults in new pages).

    Returns:
        np.ndarray: float32 gaps, the broadcast shape without L.
    """
    if out is None:
        shape = np.broadcast_shapes(tags.shape[1:],
                                    np.shape(person_tag)[1:])
        out = [np.empty(shape, np.float32) for _ in range(2)]
    gap, term = out
    for dim in range(min(len(tags), dims)):
        np.subtract(tags[dim], person_tag[dim], out=term if dim else gap)
        if dim:
            np.abs(term, out=term)
            np.maximum(gap, term, out=gap)
        else:
            np.abs(gap, out=gap)
    return gap


def band_radius(rings: int) -> float:
    """A radius that every tag gap of a pixel whose rounded tag distance is
    at most ``rings`` lies within, whatever the float32 rounding of that
    distance (pixels beyond it are at least ``rings + 1`` away)."""
    relative, absolute = _RADIUS_SLACK
    return (rings + 0.5) * (1 + relative) + absolute


def _keep_better(pairs: np.ndarray, score: np.ndarray, flat: np.ndarray,
                 best_score: np.ndarray, best: np.ndarray) -> None:
    """Where ``score`` at pixel ``flat`` beats the best of ``pairs`` (a
    higher score, or an equal one at a lower index), take it."""
    better = (score > best_score[pairs]) | (
        (score == best_score[pairs]) & (flat < best[pairs]))
    best_score[pairs[better]] = score[better]
    best[pairs[better]] = flat[better]


class HostMaps:
    """One image's maps on the CPU, read in place.

    Args:
        heatmaps (np.ndarray): (K, H, W) float32.
        tags (np.ndarray): (L*K, H, W) float32, channel ``l * K + k``.
        nms_kernel (int): Odd NMS window side.
    """

    def __init__(self, heatmaps: np.ndarray, tags: np.ndarray,
                 nms_kernel: int):
        num_joints, height, width = heatmaps.shape
        self.heatmaps = heatmaps
        self.heat = heatmaps.reshape(num_joints, height * width)
        self.tags = tags.reshape(-1, num_joints, height * width)
        self.width = width
        self.nms_kernel = nms_kernel
        self.tiles: Optional[TileMaxima] = None
        # (K, k) flat indices of the top-k peaks, set by peaks()
        self.peak_flat: Optional[np.ndarray] = None

    def peaks(self, k: int, threshold: float
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k peaks of every joint type after NMS, as far as they are
        above ``threshold``.

        Returns:
            tuple: values (K, k) float32 (descending), flat pixel indices
            (K, k) int64 and the tags under them (K, k, L) float32; see
            :func:`topk_of_candidates`.
        """
        self.tiles = TileMaxima(self.heatmaps)
        values, flat = topk_of_candidates(
            peak_candidates(self.heatmaps, self.tiles, self.nms_kernel, k,
                            threshold), k)
        joint = np.arange(flat.shape[0])[:, None]
        self.peak_flat = flat
        return values, flat, self.tags_at(joint, flat)

    def tags_at(self, joint: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """(..., L) tags of joint types ``joint`` at pixels ``flat``."""
        return np.moveaxis(self.tags[:, joint, flat], 0, -1)

    def quarter_offsets(self, joint: np.ndarray, flat: np.ndarray
                        ) -> Tuple[np.ndarray, np.ndarray]:
        """:func:`quarter_offsets` at pixels ``flat`` (N, ) of joint types
        ``joint`` (N, ), neighbours clamped to the map."""
        heat, width = self.heat, self.width
        y, x = np.divmod(flat, width)
        last_row = heat.shape[1] - width
        return quarter_offsets(
            heat[joint, flat + (x < width - 1)], heat[joint, flat - (x > 0)],
            heat[joint, flat + width * (flat < last_row)],
            heat[joint, flat - width * (y > 0)])

    def refinement_argmax(self, pair_type: np.ndarray,
                          pair_tag: np.ndarray
                          ) -> Tuple[np.ndarray, np.ndarray]:
        """Per (joint type, person tag) pair, the first pixel in raster
        order with the highest :func:`refinement_scores`, and its heat.

        Where the kernels are built, one compiled scan per heatmap does it
        (:meth:`_refine_with_kernel`). Otherwise two bounds keep most
        pixels from being scored, both exact (a pixel left out scores
        strictly below the pair's best):

        1. A score is never above the heat. In round i, every heatmap with
           open pairs has its pixels down to ``level``, the n-th largest
           tile maximum (n = ``REFINE_TILE_COUNTS[i]``), scored where their
           tags are within 0.5 of the person's in the first two tag
           dimensions (:func:`tag_gap`; the others score at most the map's
           maximum - 1); a pair whose best score reaches ``level`` and is
           above that maximum - 1 is settled.
        2. A score is never above the map's heat maximum minus the rounded
           tag distance, and that distance is at least the gap along the
           first tag dimension. Pairs still open (e.g. a person tag that
           only a few background pixels come near) score the pixels within
           a widening band of that gap until the pixels outside it cannot
           reach their best (:meth:`_search_by_distance`).

        Maps with NaN heat, person tags that are not finite, and heatmaps
        that reach bound 2 with tags that are not all finite are scored
        whole, as the official code does (a NaN tag elsewhere is not looked
        for; the compiled scan looks where it reads tags).

        Args:
            pair_type (np.ndarray): (N, ) joint types.
            pair_tag (np.ndarray): (N, L) float32 person tags.

        Returns:
            tuple: flat pixel indices (N, ) int64 and heat (N, ) float32.
        """
        num_pixels = self.heat.shape[1]
        best_score = np.full(pair_type.size, -np.inf, np.float32)
        best = np.full(pair_type.size, num_pixels, np.int64)
        tile_max = self.tiles.max.reshape(self.tiles.max.shape[0], -1)
        open_pairs = np.arange(pair_type.size)
        if (np.isnan(tile_max[pair_type]).any()
                or not np.isfinite(pair_tag).all()):
            self._score_whole_maps(pair_type, pair_tag, open_pairs, best)
            return best, self.heat[pair_type, best]
        if self._kernel_reads_maps(pair_tag):
            self._refine_with_kernel(pair_type, pair_tag, best_score, best)
            return best, self.heat[pair_type, best]
        scored_below = np.full(tile_max.shape[0], np.inf, np.float32)
        counts = [c for c in REFINE_TILE_COUNTS if c < tile_max.shape[1]]
        with_pairs = np.unique(pair_type)
        levels = _levels(tile_max[with_pairs], counts) if counts else ()
        for round_levels in levels:
            if open_pairs.size == 0:
                break
            types, pair_row = np.unique(pair_type[open_pairs],
                                        return_inverse=True)
            level = round_levels[np.searchsorted(with_pairs, types)]
            row, flat, heat = self._pixels_between(
                types, level, scored_below[types])
            bounds = np.searchsorted(row, np.arange(types.size + 1))
            for index, joint_type in enumerate(types):
                pixels = slice(bounds[index], bounds[index + 1])
                self._keep_best_in_band(joint_type, flat[pixels],
                                        heat[pixels],
                                        open_pairs[pair_row == index],
                                        pair_tag, best_score, best)
            scored_below[types] = np.minimum(scored_below[types], level)
            # pixels outside the band score at most the map's maximum - 1
            beyond_band = tile_max[types].max(axis=1) - 1
            settled = ((best_score[open_pairs] >= level[pair_row]) &
                       (best_score[open_pairs] > beyond_band[pair_row]))
            open_pairs = open_pairs[~settled]
        scratch = [np.empty(num_pixels, dtype) for dtype in
                   (np.float32, np.float32, bool)] if open_pairs.size else []
        for joint_type in np.unique(pair_type[open_pairs]):
            self._search_by_distance(
                joint_type, open_pairs[pair_type[open_pairs] == joint_type],
                pair_tag, best_score, best, scratch)
        return best, self.heat[pair_type, best]

    def _kernel_reads_maps(self, pair_tag: np.ndarray) -> bool:
        """Whether :mod:`._ae_kernels` is built and can read the maps in
        place (see :func:`_kernel_reads`) and their fewer than 8 tag
        dimensions (NumPy sums 8 or more pairwise)."""
        return (self.tags.shape[0] < 8 and pair_tag.dtype == np.float32
                and _kernel_reads(self.heat, self.tags, self.tiles.max))

    def _refine_with_kernel(self, pair_type: np.ndarray,
                            pair_tag: np.ndarray, best_score: np.ndarray,
                            best: np.ndarray) -> None:
        """:meth:`refinement_argmax` by the compiled scan; updates
        ``best_score`` and ``best`` in place.

        Each heatmap's tiles are visited from the highest heat maximum
        down, each pair skipping the tiles and pixels whose heat is below
        its best and the pixels whose tags are farther, along a dimension,
        than the heat leaves room for (see ``_ae_kernels.c``). The scan starts
        from the pairs' scores at the peaks found by :meth:`peaks`, so
        that most pairs skip nearly every tile from the start. Heatmaps
        where it reads a NaN tag (the first dimension of a tile it visits,
        or any of a pixel it scores) are scored whole.
        """
        self._score_at_peaks(pair_type, pair_tag, best_score, best)
        order = np.argsort(pair_type, kind='stable')
        scores, pixels = best_score[order], best[order]
        nan_types = np.zeros(self.heat.shape[0], np.uint8)
        num_tags, num_joints, _ = self.tags.shape
        _ae_kernels.refine(
            self.heat, self.tags, self.tiles.max,
            (num_joints, self.heat.shape[1] // self.width, self.width,
             num_tags, self.tiles.side, self.tiles.rows, self.tiles.cols),
            pair_type[order].astype(np.int64),
            np.ascontiguousarray(pair_tag[order]), scores, pixels,
            nan_types, _RADIUS_SLACK)
        best_score[order], best[order] = scores, pixels
        rows = np.flatnonzero(nan_types[pair_type])
        if rows.size:
            self._score_whole_maps(pair_type, pair_tag, rows, best)

    def _score_at_peaks(self, pair_type: np.ndarray, pair_tag: np.ndarray,
                        best_score: np.ndarray, best: np.ndarray) -> None:
        """Score every pair at the top-k peaks of its joint type (real
        pixels, scored exactly) and keep the best, in place."""
        flat = self.peak_flat[pair_type]  # (N, k)
        scores = refinement_scores(self.heat[pair_type[:, None], flat],
                                   self.tags[:, pair_type[:, None], flat],
                                   pair_tag.T[:, :, None])
        top = scores.max(axis=1)
        first = np.where(scores == top[:, None], flat,
                         self.heat.shape[1]).min(axis=1)
        _keep_better(np.arange(pair_type.size), top, first, best_score, best)

    def _search_by_distance(self, joint_type: int, pairs: np.ndarray,
                            pair_tag: np.ndarray, best_score: np.ndarray,
                            best: np.ndarray,
                            scratch: List[np.ndarray]) -> None:
        """Bound 2 of :meth:`refinement_argmax` for the open ``pairs`` of
        one heatmap; updates ``best_score`` and ``best`` in place.

        A pixel whose :func:`tag_gap` exceeds ``band_radius(m)`` has a
        rounded tag distance of at least ``m + 1``, so it scores at most
        the heatmap's maximum minus ``m + 1``. Each pair scores the pixels
        of its band for m = 0, 1, 3, ... (or the m its best score asks
        for), until its best score is above that bound. Maps whose tags or
        heat are not all finite (a NaN would be numpy's argmax) are scored
        whole.

        Args:
            scratch (list): Three (H*W, ) arrays, two float32 and one
                bool, reused by every heatmap.
        """
        planes = self.tags[:, joint_type]
        top = float(self.tiles.max[joint_type].max())
        heat = self.heat[joint_type]
        gaps, near = scratch[:2], scratch[2]
        for index, pair in enumerate(pairs):
            gap = tag_gap(planes, pair_tag[pair], gaps, _SEARCH_DIMS)
            if index == 0 and not (
                    np.isfinite(top) and np.isfinite(gap.max())
                    and np.isfinite(planes[_SEARCH_DIMS:].sum())):
                self._score_whole_maps(np.full(pairs.size, joint_type),
                                       pair_tag[pairs],
                                       np.arange(pairs.size), best, pairs)
                return
            rings = 0
            while True:
                flat = np.flatnonzero(
                    np.less_equal(gap, band_radius(rings), out=near))
                self._keep_best(joint_type, flat, heat.take(flat),
                                pairs[index:index + 1], pair_tag,
                                best_score, best)
                score = float(best_score[pair])
                if score > top - (rings + 1):
                    break
                rings = 2 * rings + 1 if score == -np.inf else min(
                    2 * rings + 1, int(np.floor(top - score)))

    def _score_whole_maps(self, pair_type: np.ndarray, pair_tag: np.ndarray,
                          rows: np.ndarray, best: np.ndarray,
                          into: Optional[np.ndarray] = None) -> None:
        """``best[into[i]]`` = argmax of pair ``rows[i]`` over its whole
        heatmap (``into`` defaults to ``rows``)."""
        into = rows if into is None else into
        for joint_type in np.unique(pair_type[rows]):
            mine = pair_type[rows] == joint_type
            best[into[mine]] = refinement_scores(
                self.heat[joint_type], self.tags[:, joint_type, None],
                pair_tag[rows[mine]].T[:, :, None]).argmax(axis=1)

    def _tag_planes(self, joint_type: int, flat: np.ndarray) -> np.ndarray:
        """(L, n) C-contiguous tags of one joint type at pixels ``flat``
        (a strided gather would make the scoring several times slower)."""
        num_tags, num_joints, num_pixels = self.tags.shape
        first = (np.arange(num_tags) * num_joints + joint_type) * num_pixels
        return self.tags.reshape(-1).take(first[:, None] + flat)

    def _keep_best(self, joint_type: int, flat: np.ndarray, heat: np.ndarray,
                   pairs: np.ndarray, pair_tag: np.ndarray,
                   best_score: np.ndarray, best: np.ndarray) -> None:
        """Score ``pairs`` (of heatmap ``joint_type``) on the pixels
        ``flat`` (n, ) with heat ``heat``; where one beats the pair's best
        (a higher score, or an equal one at a lower index), update
        ``best_score`` and ``best`` in place."""
        if flat.size == 0:
            return
        scores = refinement_scores(heat,
                                   self._tag_planes(joint_type, flat)[:, None],
                                   pair_tag[pairs].T[:, :, None])
        top = scores.max(axis=1)
        # the lowest index among the maxima (pixels are in tile order)
        first = np.where(scores == top[:, None], flat,
                         self.heat.shape[1]).min(axis=1)
        _keep_better(pairs, top, first, best_score, best)

    def _keep_best_in_band(self, joint_type: int, flat: np.ndarray,
                           heat: np.ndarray, pairs: np.ndarray,
                           pair_tag: np.ndarray, best_score: np.ndarray,
                           best: np.ndarray) -> None:
        """:meth:`_keep_best` on the pixels whose :func:`tag_gap` to each
        pair's tag is within ``band_radius(0)`` (the others have a rounded
        distance of at least 1)."""
        if pairs.size * flat.size <= _DENSE_SCORING:  # fewer calls
            self._keep_best(joint_type, flat, heat, pairs, pair_tag,
                            best_score, best)
            return
        tags = self._tag_planes(joint_type, flat)
        near = np.flatnonzero(
            tag_gap(tags[:, None], pair_tag[pairs].T[:, :, None]) <=
            band_radius(0))
        row, col = np.divmod(near, flat.size)
        if row.size == 0:
            return
        scores = refinement_scores(heat[col], tags[:, col],
                                   pair_tag[pairs[row]].T)
        starts = np.flatnonzero(np.diff(row, prepend=-1))
        top = np.maximum.reduceat(scores, starts)
        at_top = scores == np.repeat(top, np.diff(starts, append=row.size))
        first = np.minimum.reduceat(
            np.where(at_top, flat[col], self.heat.shape[1]), starts)
        _keep_better(pairs[row[starts]], top, first, best_score, best)

    def _pixels_between(self, types: np.ndarray, low: np.ndarray,
                        high: np.ndarray
                        ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixels of heatmaps ``types`` (T, ) with ``low <= heat < high``
        (per heatmap), found through the tiles with a maximum >= ``low``.

        Returns:
            tuple: (n, ) index into ``types``, flat pixel index and heat,
            grouped by heatmap (a cut tile may repeat an edge pixel).
        """
        tile_max = self.tiles.max.reshape(self.tiles.max.shape[0], -1)
        row, tile = np.nonzero(tile_max[types] >= low[:, None])
        flat = self.tiles.flat_pixels(tile)
        row = np.repeat(row, self.tiles.side**2)
        heat = self.heat.reshape(-1).take(types[row] * self.heat.shape[1] +
                                          flat)
        keep = (heat >= low[row]) & (heat < high[row])
        return row[keep], flat[keep], heat[keep]


class DeviceMaps:
    """One image's maps on their device (a GPU), read there.

    Build them for a whole batch with :meth:`batch`: NMS and top-k run on
    the device for all images at once and only the peaks come back.

    Args:
        heatmaps (Tensor): (K, H, W) float32.
        tags (Tensor): (L*K, H, W) float32, channel ``l * K + k``.
        peaks (tuple): This image's result of :meth:`peaks` (NumPy).
    """

    def __init__(self, heatmaps: torch.Tensor, tags: torch.Tensor,
                 peaks: Tuple[np.ndarray, np.ndarray, np.ndarray]):
        num_joints, height, width = heatmaps.shape
        self.heat = heatmaps.reshape(num_joints, height * width)
        self.tags = tags.reshape(-1, num_joints, height * width)
        self.width = width
        self._peaks = peaks

    @property
    def tag_dim(self) -> int:
        return self.tags.shape[0]

    @classmethod
    def batch(cls, heatmaps: torch.Tensor, tags: torch.Tensor,
              nms_kernel: int, k: int) -> List['DeviceMaps']:
        """Maps of a batch, heatmaps (B, K, H, W) and tags (B, L*K, H, W),
        with the peaks of all images found in one pass on the device."""
        if nms_kernel % 2 != 1:
            raise ValueError(f'nms_kernel must be odd, got {nms_kernel}')
        batch, num_joints, height, width = heatmaps.shape
        pooled = F.max_pool2d(heatmaps, nms_kernel, 1, nms_kernel // 2)
        suppressed = heatmaps * torch.eq(pooled, heatmaps).float()
        values, flat = suppressed.flatten(2).topk(min(k, height * width),
                                                  dim=2)
        flat_tags = tags.reshape(batch, -1, num_joints, height * width)
        peak_tags = flat_tags.gather(
            3, flat[:, None].expand(-1, flat_tags.shape[1], -1, -1))
        values, flat = values.cpu().numpy(), flat.cpu().numpy()
        peak_tags = peak_tags.permute(0, 2, 3, 1).cpu().numpy()
        return [
            cls(heatmaps[i], tags[i], (values[i], flat[i], peak_tags[i]))
            for i in range(batch)
        ]

    def peaks(self, k: int, threshold: float
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """See :meth:`HostMaps.peaks` (computed by :meth:`batch`)."""
        return self._peaks

    def quarter_offsets(self, joint: np.ndarray, flat: np.ndarray
                        ) -> Tuple[np.ndarray, np.ndarray]:
        """See :meth:`HostMaps.quarter_offsets`; gathered on the device."""
        width, device = self.width, self.heat.device
        joint_t = torch.as_tensor(joint, device=device)
        flat_t = torch.as_tensor(flat, device=device)
        x = flat_t % width
        last_row = self.heat.shape[1] - width
        steps = [(x < width - 1).long(), -(x > 0).long(),
                 width * (flat_t < last_row).long(),
                 -width * (flat_t >= width).long()]
        neighbours = torch.stack(
            [self.heat[joint_t, flat_t + step] for step in steps]).cpu()
        return quarter_offsets(*neighbours.numpy())

    def refinement_argmax(self, pair_type: np.ndarray,
                          pair_tag: np.ndarray
                          ) -> Tuple[np.ndarray, np.ndarray]:
        """See :meth:`HostMaps.refinement_argmax`: every pixel of the
        pair's heatmap is scored, on the device, in chunks of pairs, with
        the same float32 operations (tag dimensions summed in order, as
        NumPy does for fewer than 8)."""
        pixels = self.heat.shape[1]
        chunk = max(1, _DEVICE_CHUNK // pixels)
        best = []
        for start in range(0, pair_type.size, chunk):
            joint = torch.as_tensor(pair_type[start:start + chunk],
                                    device=self.heat.device)
            person_tag = torch.as_tensor(pair_tag[start:start + chunk],
                                         device=self.heat.device)
            sq_dist = None
            for dim in range(self.tag_dim):
                term = self.tags[dim, joint] - person_tag[:, dim, None]
                term = term * term
                sq_dist = term if sq_dist is None else sq_dist + term
            scores = self.heat[joint] - torch.round(torch.sqrt(sq_dist))
            best.append(scores.argmax(dim=1))
        best = torch.cat(best)
        heat = self.heat[torch.as_tensor(pair_type, device=best.device), best]
        return best.cpu().numpy(), heat.cpu().numpy()
