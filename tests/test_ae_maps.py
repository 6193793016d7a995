"""The decoder's map readers (``codecs/ae_maps.py``): the official top-k of
the suppressed maps and the official refinement argmax, ties included, while
reading only part of the maps; and the device (PyTorch) path, forced on CPU
tensors, against the NumPy path.

The top-k shortcut relies on how PyTorch's CPU ``topk`` orders tied values
(a heap); these tests compare it with ``torch.topk`` on the whole suppressed
map, on tie-heavy maps, under every torch the project supports (run them
under the second stack too).

The CPU path runs twice (``host_path``): with the compiled kernels
(``codecs/_ae_kernels.c``, built by the install; their absence fails the
tests in CI) and with NumPy alone, as where no C compiler was found.
"""
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import higherhrnet_plugin  # noqa: F401  (shims before mmpose imports)
from higherhrnet_plugin.codecs import ae_maps
from higherhrnet_plugin.codecs.ae_grouping import (AEGroupingConfig,
                                                   batch_group_keypoints)
from higherhrnet_plugin.testing.decoder_cases import (real_size_maps,
                                                      tags_per_joint)
from higherhrnet_plugin.testing.reference_ae_grouping import \
    reference_group_keypoints


def test_kernels_are_built_in_ci():
    """The install compiles the kernels (setup.py); CI must test them."""
    if not os.environ.get('CI'):
        pytest.skip('checked in CI')
    assert ae_maps._ae_kernels is not None


def test_kernels_refuse_arrays_that_do_not_fit(host_path):
    """The compiled kernels check sizes, order and dtypes before reading
    anything: a wrong call raises instead of reading past an array."""
    if host_path == 'numpy':
        pytest.skip('the compiled kernels only')
    kernels = ae_maps._ae_kernels
    heat = np.zeros((2, 16, 16), np.float32)
    tags = np.zeros((2, 2, 16, 16), np.float32)
    tile_max = np.zeros((2, 2, 2), np.float32)
    shape = (2, 16, 16, 2, 8, 2, 2)

    def refine(pair_type, pair_tag, out_score=None, tiles=tile_max):
        out_score = np.zeros(2, np.float32) if out_score is None else out_score
        kernels.refine(heat, tags, tiles, shape, pair_type, pair_tag,
                       out_score, np.zeros(2, np.int64),
                       np.zeros(2, np.uint8), (1e-5, 1e-6))

    refine(np.array([0, 1]), np.zeros((2, 2), np.float32))  # fits
    with pytest.raises(ValueError, match='sorted'):
        refine(np.array([1, 0]), np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match='sorted'):
        refine(np.array([0, 2]), np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match='pair_tag'):
        refine(np.array([0, 1]), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match='tile_max'):
        refine(np.array([0, 1]), np.zeros((2, 2), np.float32),
               tiles=np.zeros((2, 1, 2), np.float32))
    read_only = np.zeros(2, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match='read-only'):
        refine(np.array([0, 1]), np.zeros((2, 2), np.float32),
               out_score=read_only)
    with pytest.raises(ValueError, match='outside'):
        out = [np.zeros(64, np.int64), np.zeros(64, np.int64),
               np.zeros(64, np.float32)]
        kernels.local_maxima(heat, (2, 16, 16, 8, 5), np.array([0]),
                             np.array([2]), np.array([0]),
                             np.zeros(1, np.float32), *out)
    with pytest.raises(ValueError, match='out'):
        kernels.tile_max(heat, (2, 16, 16, 8), np.zeros((2, 2, 1),
                                                        np.float32))


def test_kernel_scan_of_heatmaps_of_minus_infinity(host_path):
    """Every score -inf (and no seed): the scan still finds pixel 0, the
    official argmax, instead of bounding tags by -inf - -inf."""
    if host_path == 'numpy':
        pytest.skip('the compiled kernels only')
    heat = np.full((1, 16, 16), -np.inf, np.float32)
    tags = np.zeros((1, 1, 16, 16), np.float32)
    best_score = np.full(1, -np.inf, np.float32)
    best = np.full(1, 256, np.int64)
    ae_maps._ae_kernels.refine(
        heat, tags, np.full((1, 2, 2), -np.inf, np.float32),
        (1, 16, 16, 1, 8, 2, 2), np.zeros(1, np.int64),
        np.full((1, 1), 3.0, np.float32), best_score, best,
        np.zeros(1, np.uint8), (1e-5, 1e-6))
    assert best[0] == 0 and best_score[0] == -np.inf


def official_topk(heatmaps, kernel, k):
    """``torch.topk`` of the official suppressed maps (K, H*W)."""
    hm = torch.from_numpy(heatmaps)
    pooled = F.max_pool2d(hm, kernel, 1, kernel // 2)
    suppressed = hm * torch.eq(pooled, hm).float()
    values, index = suppressed.flatten(1).topk(k, dim=1)
    return values.numpy(), index.numpy()


def plateau_maps(seed, shape, levels=8, block=2, low=0.0):
    """Values on a coarse grid of ``levels`` steps in [low, 1], each repeated
    over ``block`` x ``block`` pixels: plateaus of tied local maxima all
    over the maps."""
    rng = np.random.default_rng(seed)
    num, height, width = shape
    coarse = rng.integers(0, levels + 1,
                          (num, -(-height // block), -(-width // block)))
    maps = np.repeat(np.repeat(coarse, block, 1), block, 2)
    maps = low + (1 - low) * maps[:, :height, :width] / levels
    return maps.astype(np.float32)


def candidates_topk(heatmaps, kernel, k, threshold=0.1, heap=False):
    tiles = ae_maps.TileMaxima(heatmaps)
    if heap:
        candidates = ae_maps.heap_candidates(heatmaps, tiles, kernel, k)
    else:
        candidates = ae_maps.peak_candidates(heatmaps, tiles, kernel, k,
                                             threshold)
    return candidates, ae_maps.topk_of_candidates(candidates, k)


@pytest.mark.parametrize('shape', [(17, 96, 128), (5, 77, 131),
                                   (3, 300, 64)])
@pytest.mark.parametrize('kernel, k', [(5, 30), (3, 5), (7, 12)])
@pytest.mark.parametrize('block', [1, 2, 3])
def test_heap_candidates_give_torch_topk(shape, kernel, k, block,
                                        host_path):
    """All k entries, values and indices in order, as ``torch.topk`` of the
    whole suppressed map, on maps full of tied peaks."""
    heatmaps = plateau_maps(sum(shape) + kernel + block, shape, block=block)
    candidates, (values, index) = candidates_topk(heatmaps, kernel, k,
                                                  heap=True)
    assert candidates.flat is not None  # searched by bands, not whole
    assert candidates.values.shape[1] < shape[1] * shape[2] // 2
    expected_values, expected_index = official_topk(heatmaps, kernel, k)
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(index, expected_index)
    # the maps do have ties among the top k
    assert (expected_values[:, 1:] == expected_values[:, :-1]).any()


@pytest.mark.parametrize('seed', range(6))
def test_heap_candidates_on_upsampled_plateaus(seed, shared_coco,
                                               host_path):
    """Real-size maps whose peaks are exact plateaus (symmetric Gaussians
    upsampled, as a perfect model's outputs), smooth noise around them."""
    heatmaps, _ = real_size_maps(1 + 4 * seed, (256, 352), seed=seed,
                                 peak_jitter=0.0)
    heatmaps = heatmaps[0].numpy()
    candidates, (values, index) = candidates_topk(heatmaps, 5, 30, heap=True)
    assert candidates.flat is not None
    expected_values, expected_index = official_topk(heatmaps, 5, 30)
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(index, expected_index)


@pytest.mark.parametrize('ties', [False, True])
@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('batch', [2048, 7])
def test_peak_candidates_give_the_official_peaks_above_threshold(
        monkeypatch, ties, seed, batch, host_path):
    """Distinct peak values take the short path (the peaks above the
    threshold only); tied ones the heap path. Either way the entries above
    the threshold are those of ``torch.topk``, in its order, whether the
    tiles' local maxima are read by the kernel, at once or in batches of 7
    tiles."""
    monkeypatch.setattr(ae_maps, '_TILES_PER_BATCH', batch)
    shape = (17, 120, 88)
    threshold = 0.1 + 0.2 * seed
    rng = np.random.default_rng(seed)
    # noise below the threshold, and 10 to 55 peaks above 0.1 per map:
    # distinct values, or 3 to 15 peaks of a few values on 2 x 2 plateaus
    heatmaps = (plateau_maps(seed, shape) if ties else rng.random(shape)) / 20
    peaks = 3 + 4 * seed if ties else 10 + 15 * seed
    joint = np.arange(17).repeat(peaks)
    y = rng.integers(0, shape[1] - 1, joint.size)
    x = rng.integers(0, shape[2] - 1, joint.size)
    if ties:
        value = rng.integers(1, 10, joint.size) / 10 + 0.05
        for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
            heatmaps[joint, y + dy, x + dx] = value
    else:
        heatmaps[joint, y, x] = rng.uniform(0.1, 1, joint.size)
    heatmaps = heatmaps.astype(np.float32)
    candidates, (values, index) = candidates_topk(heatmaps, 5, 30,
                                                  threshold)
    assert candidates.in_heap_order == ties
    expected_values, expected_index = official_topk(heatmaps, 5, 30)
    above = expected_values.astype(np.float64) > threshold
    assert above.sum() > 17 and (seed == 0 or (~above).any())
    got = np.zeros_like(above)
    got[:, :values.shape[1]] = values.astype(np.float64) > threshold
    np.testing.assert_array_equal(got, above)
    np.testing.assert_array_equal(values[above[:, :values.shape[1]]],
                                  expected_values[above])
    np.testing.assert_array_equal(index[above[:, :values.shape[1]]],
                                  expected_index[above])


def test_threshold_compares_in_float64():
    """A peak of exactly float32(0.1) is above the threshold 0.1."""
    heatmaps = np.zeros((2, 64, 64), np.float32)
    heatmaps[:, 30, 40] = np.float32(0.1)
    _, (values, index) = candidates_topk(heatmaps, 5, 30, 0.1)
    assert (values[:, 0] == np.float32(0.1)).all()
    assert (index[:, 0] == 30 * 64 + 40).all()


@pytest.mark.parametrize('case', ['small', 'negative', 'nan'])
def test_whole_map_when_the_shortcut_does_not_apply(case, host_path):
    """Maps too small for the heap algorithm, with a first band of negative
    plateaus (zeros elsewhere would enter the heap), or with NaNs, are
    suppressed whole; the result is still ``torch.topk``'s."""
    if case == 'small':
        heatmaps = plateau_maps(0, (3, 24, 40))  # 960 < 64 * 30 pixels
    else:
        heatmaps = plateau_maps(1, (3, 96, 128), low=-0.5)
        heatmaps[:, :20] = -0.25  # every pixel a (negative) local maximum
        if case == 'nan':
            heatmaps[1, 50, 60] = np.nan
    candidates, (values, index) = candidates_topk(heatmaps, 5, 30, heap=True)
    assert candidates.flat is None
    expected_values, expected_index = official_topk(heatmaps, 5, 30)
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(index, expected_index)


@pytest.mark.parametrize('shape', [(2, 16, 16), (3, 21, 35), (1, 7, 9)])
@pytest.mark.parametrize('writeable', [True, False])
def test_tile_maxima(shape, writeable, host_path):
    """Every tile's maximum, cut tiles included; NaN wherever a tile holds
    one (here not its first pixel, and -inf elsewhere in it)."""
    heatmaps = np.random.default_rng(0).random(shape).astype(np.float32)
    heatmaps[-1, -1, -2:] = [np.nan, -np.inf]
    heatmaps[0, 0, 1] = np.nan
    heatmaps.flags.writeable = writeable
    tiles = ae_maps.TileMaxima(heatmaps, side=8)
    rows, cols = -(-shape[1] // 8), -(-shape[2] // 8)
    assert tiles.max.shape == (shape[0], rows, cols)
    assert np.isnan(tiles.max).sum() == (1 if shape[0] == 1 else 2)
    for r in range(rows):
        for c in range(cols):
            np.testing.assert_array_equal(
                tiles.max[:, r, c],
                heatmaps[:, 8 * r:8 * r + 8, 8 * c:8 * c + 8].max(axis=(1, 2)))
    # every pixel of every tile, edge pixels repeated in cut tiles
    flat = tiles.flat_pixels(np.arange(rows * cols)).reshape(rows, cols, 64)
    assert flat.max() < shape[1] * shape[2]
    np.testing.assert_array_equal(np.unique(flat),
                                  np.arange(shape[1] * shape[2]))


def brute_force_refinement(heatmaps, tags, pair_type, pair_tag):
    """The official refinement argmax: every pixel scored, first maximum."""
    num_joints = heatmaps.shape[0]
    per_joint = tags_per_joint(tags, num_joints)
    best = []
    for joint_type, person_tag in zip(pair_type, pair_tag):
        dist = ((per_joint[joint_type] - person_tag)**2).sum(axis=2)**0.5
        best.append(np.argmax(heatmaps[joint_type] - np.round(dist)))
    best = np.array(best)
    return best, heatmaps.reshape(num_joints, -1)[pair_type, best]


@pytest.mark.parametrize('counts', [(8, 64), (1, 2, 4), (3, ), ()])
@pytest.mark.parametrize('tag_dim', [1, 2, 3])
@pytest.mark.parametrize('shift', [0, 1.25, 5])
@pytest.mark.parametrize('dense_scoring', [ae_maps._DENSE_SCORING, 0])
def test_refinement_argmax_is_the_first_best_pixel(monkeypatch, counts,
                                                   tag_dim, shift,
                                                   dense_scoring, host_path):
    """Equal scores everywhere (quantised heat and tags): the first pixel in
    raster order wins, settled by heat levels (scoring every pixel of a
    round, or only those in each pair's box of tags) or by the tag
    distance; also for person tags shifted out of the tags' range, to a
    rounded distance of about 1 (won by a pixel one ring out, with heat to
    spare) or several (negative best scores)."""
    monkeypatch.setattr(ae_maps, 'REFINE_TILE_COUNTS', counts)
    monkeypatch.setattr(ae_maps, '_DENSE_SCORING', dense_scoring)
    rng = np.random.default_rng(tag_dim)
    num_joints, height, width = 6, 45, 70
    heatmaps = plateau_maps(tag_dim, (num_joints, height, width), levels=6)
    tags = np.round(rng.uniform(-3, 3, (tag_dim * num_joints, height,
                                        width)) * 2) / 2
    tags = tags.astype(np.float32)
    pair_type = rng.integers(0, num_joints, 40)
    pair_tag = np.round(rng.uniform(-3, 3, (40, tag_dim)) * 4) / 4
    pair_tag += np.where(rng.random((40, 1)) < 0.5, -shift, shift)
    pair_tag = pair_tag.astype(np.float32)
    expected_best, expected_heat = brute_force_refinement(
        heatmaps, tags, pair_type, pair_tag)
    maps = ae_maps.HostMaps(heatmaps, tags, 5)
    maps.peaks(30, 0.1)  # computes the tiles
    best, heat = maps.refinement_argmax(pair_type, pair_tag)
    np.testing.assert_array_equal(best, expected_best)
    np.testing.assert_array_equal(heat, expected_heat)
    device = ae_maps.DeviceMaps(torch.from_numpy(heatmaps),
                                torch.from_numpy(tags), None)
    best, heat = device.refinement_argmax(pair_type, pair_tag)
    np.testing.assert_array_equal(best, expected_best)
    np.testing.assert_array_equal(heat, expected_heat)


def test_refinement_looks_one_ring_out_with_heat_to_spare(host_path):
    """Two pixels one rounded unit of tag distance away score the same,
    below the heat of a tile seen before them: the later one is found
    first (in the hottest tile), and the earlier one, which wins, must
    still be looked for one ring out (its heat leaves room for it)."""
    heatmaps = np.full((1, 24, 24), 0.1, np.float32)
    tags = np.full((1, 24, 24), 10.0, np.float32)
    for (y, x), next_heat in (((2, 2), 0.96), ((20, 20), 1.0)):
        heatmaps[0, y, x], tags[0, y, x] = 0.95, 1.0
        heatmaps[0, y, x + 1] = next_heat  # not a peak itself
    pair_type, pair_tag = np.array([0]), np.zeros((1, 1), np.float32)
    maps = ae_maps.HostMaps(heatmaps, tags, 5)
    maps.peaks(30, 0.1)
    best, _ = maps.refinement_argmax(pair_type, pair_tag)
    assert best[0] == 2 * 24 + 2
    np.testing.assert_array_equal(
        best, brute_force_refinement(heatmaps, tags, pair_type, pair_tag)[0])


@pytest.mark.parametrize('where, value', [('heat', np.nan),
                                          ('tags', np.nan),
                                          ('second tags', np.nan),
                                          ('tags', np.inf),
                                          ('second tags', -np.inf),
                                          ('pair_tag', np.inf),
                                          ('whole heatmap', -np.inf)])
def test_refinement_with_nans_scores_the_whole_map(where, value, host_path):
    """NaNs (and infinite tags) defeat the bounds: the maps are scored
    whole, so the result is still numpy's argmax of the official scores.
    The bad tags lie where both paths read them: in a band the NumPy path
    searches, and at a pixel the kernel scores (the best one without
    them)."""
    heatmaps = plateau_maps(5, (3, 40, 48))
    rng = np.random.default_rng(5)
    tags = rng.uniform(-2, 2, (6, 40, 48)).astype(np.float32)
    pair_type = np.array([0, 1, 1, 2])
    pair_tag = rng.uniform(-2, 2, (4, 2)).astype(np.float32)
    best_pixel, _ = brute_force_refinement(heatmaps, tags, pair_type,
                                           pair_tag)
    where_tags = np.unravel_index(best_pixel[1], (40, 48))
    if where == 'pair_tag':
        pair_tag[1, 0] = value
    elif where == 'heat':
        heatmaps[1, 20:22, 30] = value
    elif where == 'whole heatmap':  # every score -inf: pixel 0 wins
        heatmaps[1] = value
    else:  # tag dimension 0 or 1 of joint type 1
        plane = tags[(3 if where == 'second tags' else 0) + 1]
        plane[20:22, 30] = plane[where_tags] = value
    maps = ae_maps.HostMaps(heatmaps, tags, 5)
    maps.peaks(30, 0.1)
    best, _ = maps.refinement_argmax(pair_type, pair_tag)
    expected_best, _ = brute_force_refinement(heatmaps, tags, pair_type,
                                              pair_tag)
    np.testing.assert_array_equal(best, expected_best)


@pytest.mark.parametrize('peak_jitter', [0.0, 0.02])
def test_real_size_maps_decode_like_the_reference(peak_jitter, shared_coco,
                                                  host_path):
    """Maps as the head hands them over (flip test, L = 2): the decoder on
    the CPU, the device path and the reference loop give the same people,
    bit for bit, with exact plateaus (tied peaks) and without."""
    heatmaps, tags = real_size_maps(5, (192, 256), seed=3,
                                    peak_jitter=peak_jitter)
    heatmaps, tags = heatmaps.numpy(), tags.numpy()
    expected = reference_group_keypoints(
        heatmaps[0], tags_per_joint(tags[0], heatmaps.shape[1]))
    assert expected[0].shape[0] >= 5
    for device in (False, True):
        grouped, scores = batch_group_keypoints(heatmaps, tags,
                                                on_device=device)[0]
        np.testing.assert_array_equal(grouped, expected[0])
        np.testing.assert_array_equal(scores, expected[1])


def test_device_path_decodes_a_batch_like_the_host(shared_coco, host_path):
    """NMS and top-k batched on the device: each image's people as the
    NumPy path finds them alone."""
    maps = [real_size_maps(n, (256, 320), seed=n, peak_jitter=jitter)
            for n, jitter in ((1, 0.0), (6, 0.02), (12, 0.0))]
    heatmaps = torch.cat([m[0] for m in maps])
    tags = torch.cat([m[1] for m in maps])
    cfg = AEGroupingConfig()
    on_device = batch_group_keypoints(heatmaps, tags, cfg, on_device=True)
    on_host = batch_group_keypoints(heatmaps, tags, cfg)
    assert len(on_device) == 3
    for (grouped, scores), (expected, expected_scores) in zip(
            on_device, on_host):
        assert expected.shape[0] >= 1
        np.testing.assert_array_equal(grouped, expected)
        np.testing.assert_array_equal(scores, expected_scores)


def test_maps_are_read_in_place(shared_coco):
    """The CPU path takes the head's tensors as they are: no copy of a
    whole map (the tags stay a view of the tensor)."""
    heatmaps, tags = real_size_maps(2, (128, 160), seed=1)
    maps = ae_maps.HostMaps(heatmaps[0].numpy(), tags[0].numpy(), 5)
    assert np.shares_memory(maps.tags, tags.numpy())
    assert np.shares_memory(maps.heat, heatmaps.numpy())


def test_float32_bounds_compare_like_float64_ones():
    """A float32 value is above a float64 bound exactly when it is above
    the largest float32 at or below it (so the detection threshold, 0.1 in
    float64, need not convert the heatmaps)."""
    rng = np.random.default_rng(0)
    bound = np.concatenate([rng.normal(0, 1, 500),
                            [0.1, 0.0, -0.0, 1.0, 1 / 3, 1e-40, -1e-40]])
    near = bound.astype(np.float32)
    values = np.concatenate([
        rng.normal(0, 1, 5000).astype(np.float32), near,
        np.nextafter(near, np.float32(1)), np.nextafter(near, np.float32(-1))
    ])
    below = ae_maps._float32_below(bound)
    assert below.dtype == np.float32
    np.testing.assert_array_equal(values > below[:, None],
                                  values > bound[:, None])
