/*
 * Compiled kernels of the AE grouping decoder on the CPU (optional: where
 * this module is not built, ae_maps.py gives the same results with NumPy).
 *
 * refine: the refinement argmax, ``HostMaps.refinement_argmax``. Per
 * (joint type, person tag) pair the official decoder takes the first
 * pixel, in raster order, of the highest score
 *     heat - round(sqrt(sum_l (tag_l - person_tag_l) ** 2))
 * in float32 (tag dimensions summed left to right, as NumPy sums fewer
 * than 8 elements; no fused multiply-add). The scan keeps, per pair, the
 * best score and its pixel and compares (score, -pixel), so the order in
 * which pixels are visited does not matter. It skips, exactly:
 *   - tiles whose heat maximum is below the pair's best (a score is never
 *     above the heat), visiting tiles from the highest maximum down so
 *     that bests rise early;
 *   - pixels whose heat is below it (or equal, at a later pixel);
 *   - pixels whose tag gap along a dimension exceeds the rounded distance
 *     the heat leaves room for (the distance is at least that gap; a slack
 *     covers float32 rounding).
 * A NaN where it reads tags (the first dimension in the tiles it visits,
 * every dimension of the pixels it scores) flags the heatmap, which the
 * caller scores whole: the official argmax returns the first NaN.
 *
 * local_maxima: the NMS peaks of given tiles, ``_tile_local_maxima``.
 *
 * tile_max: the maximum of every tile, ``TileMaxima``.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const float *heat;      /* (K, H * W) */
    const float *tags;      /* (L, K, H * W) */
    const float *tile_max;  /* (K, rows, cols) */
    Py_ssize_t num_joints, height, width, tag_dim, side, rows, cols;
    double relative_slack, absolute_slack;
    double first_radius;  /* the gap radius of rounded distance 0 */
} Maps;

/* The float32 score of one pixel whose tag of dimension l is
 * ``tag[l * stride]``; ``volatile`` keeps each product and sum rounded to
 * float32 on its own (no contraction into a fused multiply-add, whatever
 * the compiler's defaults). */
static float score_of(const float *tag, Py_ssize_t stride,
                      Py_ssize_t tag_dim, const float *person_tag,
                      float heat) {
    volatile float sq_dist = 0.0f;
    for (Py_ssize_t dim = 0; dim < tag_dim; dim++) {
        volatile float diff = tag[dim * stride] - person_tag[dim];
        volatile float term = diff * diff;
        sq_dist = dim ? sq_dist + term : term;
    }
    return heat - rintf(sqrtf(sq_dist));
}

/* A radius that every tag gap of a pixel with heat at most ``heat`` lies
 * within if it can reach ``best`` (its rounded distance is at most
 * heat - best, plus float32 rounding of its score); +inf for best -inf. */
static double gap_radius(const Maps *maps, float heat, float best) {
    double room = (double)heat - (double)best;
    if (room != room)
        return INFINITY;  /* -inf heat and best: no bound */
    if (room < 0.5)
        return maps->first_radius;
    double rings = floor(room + 1e-6 * (fabs(heat) + fabs(best) + 1.0));
    return (rings + 0.5) * (1.0 + maps->relative_slack) +
           maps->absolute_slack;
}

/* Takes pixel ``pixel`` (heat ``h``, tags ``tag[l * stride]``) as the
 * pair's best if it beats it: a higher score, or an equal one at a lower
 * index; returns 1 on a NaN score. */
static int consider(Py_ssize_t pixel, float h, const float *tag,
                    Py_ssize_t stride, Py_ssize_t tag_dim,
                    const float *person_tag, float *best_score,
                    int64_t *best) {
    const float now = *best_score;
    if (h < now || (h == now && pixel > *best))
        return 0;  /* the score is at most h */
    const float score = score_of(tag, stride, tag_dim, person_tag, h);
    if (score != score)
        return 1;
    if (score > now || (score == now && pixel < *best)) {
        *best_score = score;
        *best = pixel;
    }
    return 0;
}

/* x86-64 Linux builds carry an AVX2 copy of the tile scan, picked at load
 * time where the CPU has it (about 1.2x faster here; the scores are scalar
 * either way). Tiles ahead are prefetched where the compiler can. */
#if defined(__linux__) && defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef VECTOR_CLONES
#define VECTOR_CLONES
#endif
#if defined(__GNUC__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)0)
#endif

#define SIDE 8
#define PIXELS (SIDE * SIDE)
#define MAX_TAG_DIM 7

/* Scores the pixels of one tile for the ``active`` pairs; returns 1 on a
 * NaN score (or a NaN first-dimension tag). A pair scores only pixels with
 * heat at or above its best and tag gaps within ``radius[pair]``. A full
 * 8 x 8 tile is copied into contiguous arrays, so that the compiler
 * vectorises the test of whether a pair has any such pixel (faster than
 * reading the tile in place), and the tile's other tag dimensions are read
 * row by row only once a pixel needs them (pixel by pixel, each read costs
 * a cache miss). */
VECTOR_CLONES
static int scan_tile(const Maps *maps, Py_ssize_t joint, Py_ssize_t tile,
                     const Py_ssize_t *active, Py_ssize_t num_active,
                     const float *pair_tag, const float *radius,
                     float *best_score, int64_t *best) {
    const Py_ssize_t width = maps->width, side = maps->side;
    const Py_ssize_t tag_dim = maps->tag_dim;
    const Py_ssize_t plane = maps->num_joints * maps->height * width;
    const float *heat = maps->heat + joint * maps->height * width;
    const float *tags = maps->tags + joint * maps->height * width;
    const Py_ssize_t y0 = tile / maps->cols * side;
    const Py_ssize_t x0 = tile % maps->cols * side;
    const Py_ssize_t rows = y0 + side < maps->height ? side
                                                     : maps->height - y0;
    const Py_ssize_t cols = x0 + side < width ? side : width - x0;
    int nan_seen = 0;
    if (side != SIDE || rows != SIDE || cols != SIDE || tag_dim > MAX_TAG_DIM) {
        for (Py_ssize_t i = 0; i < num_active; i++) {
            const Py_ssize_t pair = active[i];
            const float *person_tag = pair_tag + pair * tag_dim;
            for (Py_ssize_t y = y0; y < y0 + rows; y++)
                for (Py_ssize_t x = x0; x < x0 + cols; x++)
                    if (tags[y * width + x] != tags[y * width + x])
                        nan_seen = 1;
                    else if (fabsf(tags[y * width + x] - person_tag[0]) <=
                             radius[pair])
                        nan_seen |= consider(
                            y * width + x, heat[y * width + x],
                            tags + y * width + x, plane, tag_dim,
                            person_tag, best_score + pair, best + pair);
        }
        return nan_seen;
    }
    /* t[l * PIXELS + k]: tag dimension l of pixel k (row-major) */
    float h[PIXELS], t[MAX_TAG_DIM * PIXELS];
    int other_dims_read = tag_dim == 1;
    for (int r = 0; r < SIDE; r++) {
        memcpy(h + r * SIDE, heat + (y0 + r) * width + x0, sizeof(h) / SIDE);
        memcpy(t + r * SIDE, tags + (y0 + r) * width + x0, sizeof(h) / SIDE);
    }
    for (int k = 0; k < PIXELS; k++)
        nan_seen |= t[k] != t[k];
    for (Py_ssize_t i = 0; i < num_active; i++) {
        const Py_ssize_t pair = active[i];
        const float *person_tag = pair_tag + pair * tag_dim;
        const float bound = best_score[pair], first_tag = person_tag[0];
        const float gap = radius[pair];
        int any = 0;
        for (int k = 0; k < PIXELS; k++)
            any |= (h[k] >= bound) & (fabsf(t[k] - first_tag) <= gap);
        if (!any)
            continue;
        if (!other_dims_read) {
            for (Py_ssize_t dim = 1; dim < tag_dim; dim++)
                for (int r = 0; r < SIDE; r++)
                    memcpy(t + dim * PIXELS + r * SIDE,
                           tags + dim * plane + (y0 + r) * width + x0,
                           sizeof(h) / SIDE);
            other_dims_read = 1;
        }
        for (int k = 0; k < PIXELS; k++) {
            if (!(fabsf(t[k] - first_tag) <= gap))
                continue;
            /* the other dimensions' gaps too (a NaN passes, to be scored) */
            int beyond = 0;
            for (Py_ssize_t dim = 1; dim < tag_dim; dim++)
                beyond |= fabsf(t[dim * PIXELS + k] - person_tag[dim]) > gap;
            if (!beyond)
                nan_seen |= consider(
                    (y0 + k / SIDE) * width + x0 + k % SIDE, h[k], t + k,
                    PIXELS, tag_dim, person_tag, best_score + pair,
                    best + pair);
        }
    }
    return nan_seen;
}

/* Asks for the heat and first tag dimension of a tile's rows, ahead of
 * their use in a sweep (a cache line holds a row of two tiles). */
static void prefetch_tile(const Maps *maps, Py_ssize_t joint,
                          Py_ssize_t tile) {
    const Py_ssize_t width = maps->width;
    const Py_ssize_t first = joint * maps->height * width +
                             tile / maps->cols * maps->side * width +
                             tile % maps->cols * maps->side;
    for (Py_ssize_t r = 0; r < maps->side; r++) {
        PREFETCH(maps->heat + first + r * width);
        PREFETCH(maps->tags + first + r * width);
    }
}

/* tiles prefetched ahead of the one scanned in a sweep */
#define PREFETCH_AHEAD 4
#define NUM_BUCKETS 64
/* the tiles left are swept in memory order from a bucket that holds more
 * than 1 / SWEEP_FRACTION of them all */
#define SWEEP_FRACTION 8

/* Per-call work space. */
typedef struct {
    Py_ssize_t *order, *bucket_of;  /* per tile */
    Py_ssize_t *active;             /* per pair */
    float *radius;                  /* per pair */
} Scratch;

/* Sorts the tiles of one heatmap into NUM_BUCKETS buckets of equal width
 * between their lowest and highest finite maxima (a lower bucket holds no
 * larger maximum): ``order`` lists the tiles bucket after bucket, bucket b
 * being ``order[end[b - 1]:end[b]]`` (from 0 for b = 0), and
 * ``bucket_max[b]`` its largest maximum. */
static void bucket_tiles(const float *tile_max, Py_ssize_t num_tiles,
                         Py_ssize_t *order, Py_ssize_t *bucket_of,
                         Py_ssize_t *end, float *bucket_max) {
    double low = INFINITY, high = -INFINITY;
    for (Py_ssize_t t = 0; t < num_tiles; t++) {
        double value = tile_max[t];
        if (isfinite(value)) {
            low = value < low ? value : low;
            high = value > high ? value : high;
        }
    }
    double scale = high > low ? NUM_BUCKETS / (high - low) : 0.0;
    if (!isfinite(scale))
        scale = 0.0;
    for (int b = 0; b <= NUM_BUCKETS; b++)
        end[b] = 0;
    for (int b = 0; b < NUM_BUCKETS; b++)
        bucket_max[b] = -INFINITY;
    for (Py_ssize_t t = 0; t < num_tiles; t++) {
        double value = tile_max[t];
        Py_ssize_t b = value >= high ? NUM_BUCKETS - 1
                       : value > low ? (Py_ssize_t)((value - low) * scale)
                                     : 0;
        b = b < NUM_BUCKETS ? b : NUM_BUCKETS - 1;
        bucket_of[t] = b;
        end[b + 1]++;
        if (tile_max[t] > bucket_max[b])
            bucket_max[b] = tile_max[t];
    }
    for (int b = 0; b < NUM_BUCKETS; b++)
        end[b + 1] += end[b];
    /* end[b] is bucket b's start; filling moves it to bucket b's end */
    for (Py_ssize_t t = 0; t < num_tiles; t++)
        order[end[bucket_of[t]]++] = t;
}

/* The ``count`` pairs of one heatmap (their tags, best scores and best
 * pixels), tiles visited from the highest heat maximum down, until no
 * tile left can reach a pair's best; returns 1 on a NaN score. */
static int scan_heatmap(const Maps *maps, Py_ssize_t joint, Py_ssize_t count,
                        const float *pair_tag, float *best_score,
                        int64_t *best, Scratch *scratch) {
    const Py_ssize_t num_tiles = maps->rows * maps->cols;
    const float *tile_max = maps->tile_max + joint * num_tiles;
    Py_ssize_t *order = scratch->order, *bucket_of = scratch->bucket_of;
    Py_ssize_t *active = scratch->active;
    float *radius = scratch->radius;
    Py_ssize_t end[NUM_BUCKETS + 1];
    float bucket_max[NUM_BUCKETS];
    bucket_tiles(tile_max, num_tiles, order, bucket_of, end, bucket_max);
    int nan_seen = 0;
    for (int b = NUM_BUCKETS - 1; b >= 0; b--) {
        const Py_ssize_t first = b ? end[b - 1] : 0;
        if (first == end[b])
            continue;  /* empty */
        float lowest = INFINITY;
        for (Py_ssize_t i = 0; i < count; i++) {
            const float bound = best_score[i];
            lowest = bound < lowest ? bound : lowest;
            /* from the bucket's maximum: wide enough for all its tiles */
            radius[i] = (float)gap_radius(maps, bucket_max[b], bound);
        }
        if (bucket_max[b] < lowest)
            break;  /* nor can any lower bucket's tiles */
        /* from a bucket of many tiles on (the background), all tiles
         * left in memory order */
        const int sweep = end[b] - first > num_tiles / SWEEP_FRACTION;
        for (Py_ssize_t k = sweep ? 0 : first; k < (sweep ? num_tiles : end[b]);
             k++) {
            const Py_ssize_t tile = sweep ? k : order[k];
            if (sweep && tile % 2 == 0 && tile + PREFETCH_AHEAD < num_tiles)
                prefetch_tile(maps, joint, tile + PREFETCH_AHEAD);
            if (sweep && bucket_of[tile] > b)
                continue;  /* visited */
            const float top = tile_max[tile];
            Py_ssize_t num_active = 0;
            for (Py_ssize_t i = 0; i < count; i++)
                if (top >= best_score[i])
                    active[num_active++] = i;
            if (num_active)
                nan_seen |= scan_tile(maps, joint, tile, active, num_active,
                                      pair_tag, radius, best_score, best);
        }
        if (sweep)
            break;
    }
    return nan_seen;
}

/* One array argument: its object, whether it is written, and the size of
 * its items and their number that the call expects. */
typedef struct {
    PyObject *obj;
    int writable;
    Py_ssize_t itemsize, length;
    const char *name;
} Argument;

/* The C-contiguous buffers of ``count`` arguments into ``views``, each
 * checked against its expected size; returns how many it got: ``count``,
 * or fewer with an exception set. Release them with release_buffers. */
static int get_buffers(const Argument *args, int count, Py_buffer *views) {
    for (int i = 0; i < count; i++) {
        const Argument *arg = &args[i];
        int flags = PyBUF_C_CONTIGUOUS | (arg->writable ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(arg->obj, &views[i], flags) < 0)
            return i;
        if (views[i].itemsize != arg->itemsize ||
            views[i].len != arg->itemsize * arg->length) {
            PyErr_Format(PyExc_ValueError,
                         "%s: expected %zd items of %zd bytes, got %zd bytes",
                         arg->name, arg->length, arg->itemsize, views[i].len);
            PyBuffer_Release(&views[i]);
            return i;
        }
    }
    return count;
}

static void release_buffers(Py_buffer *views, int got) {
    while (got-- > 0)
        PyBuffer_Release(&views[got]);
}

/* The number of items of ``itemsize`` bytes in ``obj`` (C-contiguous), or
 * -1 with an exception set: the length that sizes the other arguments. */
static Py_ssize_t items_in(PyObject *obj, Py_ssize_t itemsize) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    Py_ssize_t items = view.len / itemsize;
    PyBuffer_Release(&view);
    return items;
}

static const char refine_doc[] =
    "refine(heat, tags, tile_max, shape, pair_type, pair_tag, best_score,\n"
    "       best, nan_types, slack)\n\n"
    "Refinement argmax of every pair, updating best_score (float32) and\n"
    "best (int64) in place, starting from the scores they hold (a real\n"
    "pixel's exact score, or -inf). shape = (K, H, W, L, side, rows,\n"
    "cols), L < 8 (NumPy sums 8 or more terms pairwise); pair_type int64\n"
    "(N,), sorted; pair_tag float32 (N, L);\n"
    "nan_types uint8 (K,) set to 1 where a scored pixel gave NaN or a\n"
    "visited tile held a NaN first tag;\n"
    "slack = (relative, absolute) on the tag gaps.";

static PyObject *refine(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objs[8];
    Py_ssize_t k, h, w, l, side, rows, cols;
    double relative, absolute;
    if (!PyArg_ParseTuple(args, "OOO(nnnnnnn)OOOOO(dd)", &objs[0], &objs[1],
                          &objs[2], &k, &h, &w, &l, &side, &rows, &cols,
                          &objs[3], &objs[4], &objs[5], &objs[6], &objs[7],
                          &relative, &absolute))
        return NULL;
    const Py_ssize_t num_pairs = items_in(objs[3], 8);
    if (num_pairs < 0)
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t *scratch = NULL;
    const Argument arguments[8] = {
        {objs[0], 0, 4, k * h * w, "heat"},
        {objs[1], 0, 4, l * k * h * w, "tags"},
        {objs[2], 0, 4, k * rows * cols, "tile_max"},
        {objs[3], 0, 8, num_pairs, "pair_type"},
        {objs[4], 0, 4, num_pairs * l, "pair_tag"},
        {objs[5], 1, 4, num_pairs, "best_score"},
        {objs[6], 1, 8, num_pairs, "best"},
        {objs[7], 1, 1, k, "nan_types"}};
    Py_buffer views[8];
    const int got = get_buffers(arguments, 8, views);
    if (got < 8)
        goto done;
    if (side < 1 || rows != (h + side - 1) / side ||
        cols != (w + side - 1) / side) {
        PyErr_SetString(PyExc_ValueError, "tile grid does not fit the maps");
        goto done;
    }
    if (l < 1 || l > MAX_TAG_DIM) {
        PyErr_SetString(PyExc_ValueError, "tag dimensions: 1 to 7");
        goto done;
    }
    const int64_t *pair_type = views[3].buf;
    for (Py_ssize_t i = 0; i < num_pairs; i++) {
        if (pair_type[i] < 0 || pair_type[i] >= k ||
            (i && pair_type[i] < pair_type[i - 1])) {
            PyErr_SetString(PyExc_ValueError,
                            "pair_type must be sorted joint types");
            goto done;
        }
    }
    /* order, bucket_of, active, then radius (a float in each entry) */
    scratch = PyMem_Malloc(sizeof(Py_ssize_t) *
                           (2 * rows * cols + 2 * num_pairs + 2));
    if (!scratch) {
        PyErr_NoMemory();
        goto done;
    }
    Maps maps = {views[0].buf, views[1].buf, views[2].buf, k, h, w, l,
                 side, rows, cols, relative, absolute,
                 0.5 * (1.0 + relative) + absolute};
    uint8_t *nan_types = views[7].buf;
    Scratch work = {scratch, scratch + rows * cols, scratch + 2 * rows * cols,
                    (float *)(scratch + 2 * rows * cols + num_pairs + 1)};
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t start = 0, stop; start < num_pairs; start = stop) {
        const int64_t joint = pair_type[start];
        for (stop = start; stop < num_pairs && pair_type[stop] == joint;)
            stop++;
        nan_types[joint] = (uint8_t)scan_heatmap(
            &maps, joint, stop - start, (const float *)views[4].buf + start * l,
            (float *)views[5].buf + start, (int64_t *)views[6].buf + start,
            &work);
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_Free(scratch);
    release_buffers(views, got);
    return result;
}

static const char local_maxima_doc[] =
    "local_maxima(heatmaps, shape, joint, tile_row, tile_col, bound,\n"
    "             out_joint, out_flat, out_value) -> count\n\n"
    "The pixels of the given tiles that equal the maximum of their\n"
    "kernel x kernel window (clipped to the map, as max_pool2d pads with\n"
    "-inf) and are above the tile's float32 bound, tile after tile, row\n"
    "by row: their joint types, flat indices and values are written to the\n"
    "out arrays (room for every pixel of the tiles). shape = (K, H, W,\n"
    "side, kernel); joint, tile_row, tile_col int64 (n,), bound float32\n"
    "(n,). The maps must hold no NaN.";

static PyObject *local_maxima(PyObject *self, PyObject *args) {
    PyObject *objs[8];
    Py_ssize_t k, h, w, side, kernel;
    (void)self;
    if (!PyArg_ParseTuple(args, "O(nnnnn)OOOOOOO", &objs[0], &k, &h, &w,
                          &side, &kernel, &objs[1], &objs[2], &objs[3],
                          &objs[4], &objs[5], &objs[6], &objs[7]))
        return NULL;
    const Py_ssize_t n = items_in(objs[1], 8);
    if (n < 0)
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t found = 0;
    const Argument arguments[8] = {
        {objs[0], 0, 4, k * h * w, "heatmaps"},
        {objs[1], 0, 8, n, "joint"},
        {objs[2], 0, 8, n, "tile_row"},
        {objs[3], 0, 8, n, "tile_col"},
        {objs[4], 0, 4, n, "bound"},
        {objs[5], 1, 8, n * side * side, "out_joint"},
        {objs[6], 1, 8, n * side * side, "out_flat"},
        {objs[7], 1, 4, n * side * side, "out_value"}};
    Py_buffer views[8];
    const int got = get_buffers(arguments, 8, views);
    if (got < 8)
        goto done;
    const float *heat = views[0].buf, *bound = views[4].buf;
    const int64_t *joint = views[1].buf, *tile_row = views[2].buf;
    const int64_t *tile_col = views[3].buf;
    int64_t *out_joint = views[5].buf, *out_flat = views[6].buf;
    float *out_value = views[7].buf;
    const Py_ssize_t pad = kernel / 2;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (joint[i] < 0 || joint[i] >= k || tile_row[i] < 0 ||
            tile_row[i] * side >= h || tile_col[i] < 0 ||
            tile_col[i] * side >= w) {
            PyErr_SetString(PyExc_ValueError, "tile outside the maps");
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const float *map = heat + joint[i] * h * w;
        const Py_ssize_t y0 = tile_row[i] * side, x0 = tile_col[i] * side;
        const Py_ssize_t y1 = y0 + side < h ? y0 + side : h;
        const Py_ssize_t x1 = x0 + side < w ? x0 + side : w;
        for (Py_ssize_t y = y0; y < y1; y++) {
            for (Py_ssize_t x = x0; x < x1; x++) {
                const float value = map[y * w + x];
                if (!(value > bound[i]))
                    continue;
                int is_max = 1;
                const Py_ssize_t ya = y > pad ? y - pad : 0;
                const Py_ssize_t yb = y + pad < h ? y + pad : h - 1;
                const Py_ssize_t xa = x > pad ? x - pad : 0;
                const Py_ssize_t xb = x + pad < w ? x + pad : w - 1;
                for (Py_ssize_t v = ya; v <= yb && is_max; v++)
                    for (Py_ssize_t u = xa; u <= xb; u++)
                        if (map[v * w + u] > value) {
                            is_max = 0;
                            break;
                        }
                if (is_max) {
                    out_joint[found] = joint[i];
                    out_flat[found] = y * w + x;
                    out_value[found] = value;
                    found++;
                }
            }
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(found);
done:
    release_buffers(views, got);
    return result;
}

static const char tile_max_doc[] =
    "tile_max(maps, shape, out)\n\n"
    "The maximum of every side x side tile of each map (tiles of the last\n"
    "row and column cut by the map's edge), NaN where a tile holds one:\n"
    "maps float32 (n, H, W), shape = (n, H, W, side), out float32\n"
    "(n, ceil(H / side), ceil(W / side)). Reads the maps once, row after\n"
    "row.";

/* Column maxima of ``rows`` rows of ``width`` floats into ``out`` (loops
 * the compiler vectorises); returns whether the rows hold a NaN, which
 * the comparisons drop. */
static int band_max(const float *restrict first, Py_ssize_t width,
                    Py_ssize_t rows, float *restrict out) {
    int nans = 0;
    for (Py_ssize_t x = 0; x < width; x++) {
        out[x] = first[x];
        nans |= first[x] != first[x];
    }
    for (Py_ssize_t y = 1; y < rows; y++) {
        const float *restrict line = first + y * width;
        for (Py_ssize_t x = 0; x < width; x++) {
            out[x] = line[x] > out[x] ? line[x] : out[x];
            nans |= line[x] != line[x];
        }
    }
    return nans;
}

/* One tile's maximum, NaN if it holds one (for bands with a NaN). */
static float tile_max_with_nan(const float *first, Py_ssize_t width,
                               Py_ssize_t rows, Py_ssize_t x0,
                               Py_ssize_t side) {
    const Py_ssize_t x1 = x0 + side < width ? x0 + side : width;
    float most = first[x0];
    for (Py_ssize_t y = 0; y < rows; y++)
        for (Py_ssize_t x = x0; x < x1; x++) {
            const float value = first[y * width + x];
            if (value != value)
                return NAN;
            most = value > most ? value : most;
        }
    return most;
}

static PyObject *tile_max(PyObject *self, PyObject *args) {
    PyObject *maps_obj, *out_obj;
    Py_ssize_t n, h, w, side;
    (void)self;
    if (!PyArg_ParseTuple(args, "O(nnnn)O", &maps_obj, &n, &h, &w, &side,
                          &out_obj))
        return NULL;
    if (side < 1 || h < 1 || w < 1) {
        PyErr_SetString(PyExc_ValueError, "empty maps or tiles");
        return NULL;
    }
    const Py_ssize_t rows = (h + side - 1) / side, cols = (w + side - 1) / side;
    const Argument arguments[2] = {
        {maps_obj, 0, 4, n * h * w, "maps"},
        {out_obj, 1, 4, n * rows * cols, "out"}};
    Py_buffer views[2];
    const int got = get_buffers(arguments, 2, views);
    if (got < 2) {
        release_buffers(views, got);
        return NULL;
    }
    const Py_buffer maps = views[0], out = views[1];
    float *band = PyMem_Malloc(sizeof(float) * w);
    if (!band) {
        release_buffers(views, got);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        for (Py_ssize_t row = 0; row < rows; row++) {
            const float *first = (const float *)maps.buf +
                                 (i * h + row * side) * w;
            const Py_ssize_t band_rows = row * side + side < h
                                             ? side : h - row * side;
            float *tiles = (float *)out.buf + (i * rows + row) * cols;
            if (band_max(first, w, band_rows, band)) {
                for (Py_ssize_t col = 0; col < cols; col++)
                    tiles[col] = tile_max_with_nan(first, w, band_rows,
                                                   col * side, side);
                continue;
            }
            for (Py_ssize_t col = 0; col < cols; col++) {
                const Py_ssize_t x0 = col * side;
                const Py_ssize_t x1 = x0 + side < w ? x0 + side : w;
                float most = band[x0];
                for (Py_ssize_t x = x0 + 1; x < x1; x++)
                    most = band[x] > most ? band[x] : most;
                tiles[col] = most;
            }
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(band);
    release_buffers(views, got);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"refine", refine, METH_VARARGS, refine_doc},
    {"local_maxima", local_maxima, METH_VARARGS, local_maxima_doc},
    {"tile_max", tile_max, METH_VARARGS, tile_max_doc},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ae_kernels",
    "Compiled kernels of the AE grouping decoder (optional).", -1,
    methods};

PyMODINIT_FUNC PyInit__ae_kernels(void) { return PyModule_Create(&module); }
