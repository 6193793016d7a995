"""Associative-embedding grouping: parity with the official decoder.

The fixtures hold what the official HigherHRNet decoder returned for eight
COCO and four CrowdPose inputs, once with munkres 1.1.4 as its assignment
solver (the solver of the published results, this decoder's default tie
rule) and once with munkres 3.0.0 (``assignment_solver='munkres'``). Both the
decoder (on the CPU and on the maps' device) and the slow reference loop must
give the same people, bit for bit. Synthetic cases check the behaviour the
fixtures do not cover. The decoder takes tags in the head's layout
(L*K, H, W); the fixtures and the reference loop use (K, H, W, L).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import higherhrnet_plugin  # noqa: F401  (shims before mmpose imports)
from higherhrnet_plugin.codecs import ae_maps
from higherhrnet_plugin.testing import shared_path
from higherhrnet_plugin.codecs.ae_grouping import (AEGroupingConfig, _Groups,
                                                   batch_group_keypoints,
                                                   group_keypoints)
from higherhrnet_plugin.testing.decoder_cases import (tags_per_joint,
                                                      tags_to_head_layout)
from higherhrnet_plugin.testing.reference_ae_grouping import \
    reference_group_keypoints

# (dataset, assignment_solver) -> what the official decoder returned with
# that solver (munkres 1.1.4 for 'munkres-1.1', 3.0.0 for 'munkres')
FIXTURES = {
    ('coco', 'munkres-1.1'): 'official_decoder_cases_munkres114.npz',
    ('coco', 'munkres'): 'official_decoder_cases.npz',
    ('crowdpose', 'munkres-1.1'):
    'official_crowdpose_decoder_cases_munkres114.npz',
    ('crowdpose', 'munkres'): 'official_crowdpose_decoder_cases.npz',
}
CASES = [('coco', case) for case in range(8)] + [('crowdpose', case)
                                                  for case in range(4)]
# the official decoder groups CrowdPose's 14 joints in its COCO order cut
# to 14 entries
KEYPOINT_ORDER = {
    'coco': None,
    'crowdpose': [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13],
}
MODES = {
    'adjust_refine': dict(adjust=True, refine=True),
    'plain': dict(adjust=False, refine=False),
}


def on_device(heatmaps, tags, cfg=None):
    """The device (PyTorch) path, forced on CPU tensors."""
    return batch_group_keypoints(torch.from_numpy(heatmaps)[None],
                                 torch.from_numpy(tags)[None], cfg,
                                 on_device=True)[0]


def reference(heatmaps, tags, cfg=None):
    return reference_group_keypoints(
        heatmaps, tags_per_joint(tags, heatmaps.shape[0]), cfg)


def numpy_path(heatmaps, tags, cfg):
    """The decoder on the CPU without its compiled kernels."""
    with ae_maps.numpy_path():
        return group_keypoints(heatmaps, tags, cfg)


DECODERS = {'fast': group_keypoints, 'numpy': numpy_path,
            'device': on_device, 'reference': reference}


@pytest.fixture(scope='module')
def official():
    """``official(dataset, solver)``: the fixture file, opened once."""
    files = {}

    def load(dataset, solver):
        if (dataset, solver) not in files:
            files[dataset, solver] = np.load(
                shared_path('fixtures', FIXTURES[dataset, solver]))
        return files[dataset, solver]

    yield load
    for data in files.values():
        data.close()


def decode_case(official, decoder, dataset, case, mode, solver):
    """Decode a fixture case; return (got, expected) (grouped, scores)."""
    data = official(dataset, solver)
    cfg = AEGroupingConfig(keypoint_order=KEYPOINT_ORDER[dataset],
                           assignment_solver=solver, **MODES[mode])
    got = DECODERS[decoder](data[f'case{case}_heatmaps'],
                            tags_to_head_layout(data[f'case{case}_tags']),
                            cfg)
    expected = (data[f'case{case}_{mode}_grouped'],
                data[f'case{case}_{mode}_scores'])
    return got, expected


def assert_same_output(got, expected):
    """Same people in the same order, bit for bit."""
    (grouped, scores), (want, want_scores) = got, expected
    assert grouped.dtype == np.float32 and scores.dtype == np.float32
    np.testing.assert_array_equal(grouped, want)
    np.testing.assert_array_equal(scores, want_scores)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('dataset, case', CASES)
@pytest.mark.parametrize('decoder, solver', [('fast', 'munkres-1.1'),
                                             ('numpy', 'munkres-1.1'),
                                             ('device', 'munkres-1.1'),
                                             ('reference', 'munkres-1.1'),
                                             ('fast', 'munkres')])
def test_matches_official_decoder(official, decoder, solver, dataset, case,
                                  mode):
    assert_same_output(
        *decode_case(official, decoder, dataset, case, mode, solver))


def test_default_is_the_tie_rule_of_munkres_1_1():
    assert AEGroupingConfig().assignment_solver == 'munkres-1.1'


@pytest.mark.parametrize('solver', ['munkres', 'scipy'])
def test_other_tie_rules_change_the_official_result(official, solver):
    """Why the tie rule matters: with munkres 3.0.0's or SciPy's choice
    among equal-cost optima, case 7 groups people otherwise than the
    official decoder with munkres 1.1.4 (so the parity test above can
    fail)."""
    data = official('coco', 'munkres-1.1')
    got = group_keypoints(
        data['case7_heatmaps'], tags_to_head_layout(data['case7_tags']),
        AEGroupingConfig(assignment_solver=solver, **MODES['plain']))
    with pytest.raises(AssertionError):
        assert_same_output(
            got, (data['case7_plain_grouped'], data['case7_plain_scores']))


# --------------------------------------------------------------------------
# Synthetic maps
# --------------------------------------------------------------------------


def make_maps(people, num_joints=17, size=(48, 64), tag_dim=1, noise=0.0,
              seed=0):
    """Heatmaps with a Gaussian peak per given joint and a tag plateau
    around it.

    Args:
        people: list of (joints, tag) or (joints, tag, peak value); joints
            maps joint type -> (x, y).
        size: (H, W).
        noise: amplitude of a uniform background.

    Returns:
        heatmaps (K, H, W) and tags (L*K, H, W), float32.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    heatmaps = (rng.random((num_joints, height, width)) * noise)
    tags = rng.uniform(-6, 6, (num_joints, height, width, tag_dim))
    yy, xx = np.mgrid[:height, :width]
    for joints, tag, *peak in people:
        for joint_type, (x, y) in joints.items():
            blob = np.exp(-((xx - x)**2 + (yy - y)**2) / (2 * 1.5**2))
            blob *= peak[0] if peak else 1.0
            heatmaps[joint_type] = np.maximum(heatmaps[joint_type], blob)
            near = (xx - x)**2 + (yy - y)**2 <= 9
            tags[joint_type][near] = tag
    return heatmaps.astype(np.float32), tags_to_head_layout(
        tags.astype(np.float32))


def random_maps(seed, num_joints=17, tag_dim=1, size=(40, 56), people=4):
    """Noisy maps with quantised values (plateaus, tied peaks, repeated tags)
    and partly visible people with slightly noisy tags."""
    rng = np.random.default_rng(seed)
    height, width = size
    heatmaps = np.round(rng.random((num_joints, height, width)) * 0.03 * 64)
    heatmaps = heatmaps / 64
    tags = np.round(rng.uniform(-6, 6, (num_joints, height, width, tag_dim)),
                    1)
    yy, xx = np.mgrid[:height, :width]
    for person in range(people):
        tag = rng.normal(2.0 * person, 0.3, tag_dim)
        for joint_type in range(num_joints):
            if rng.random() < 0.25:
                continue  # joint not visible
            x, y = rng.integers(0, width), rng.integers(0, height)
            peak = np.round(rng.uniform(0.2, 1.0) * 32) / 32
            blob = peak * np.exp(-((xx - x)**2 + (yy - y)**2) / 4.0)
            heatmaps[joint_type] = np.maximum(heatmaps[joint_type],
                                              np.round(blob * 64) / 64)
            near = (xx - x)**2 + (yy - y)**2 <= 4
            tags[joint_type][near] = np.round(
                tag + rng.normal(0, 0.2, tag_dim), 2)
    return heatmaps.astype(np.float32), tags_to_head_layout(
        tags.astype(np.float32))


@pytest.mark.parametrize('seed, num_joints, tag_dim, options', [
    (0, 17, 1, {}),
    (1, 17, 2, {}),
    (2, 14, 2, {}),
    (3, 17, 1, dict(adjust=False, refine=False)),
    (4, 17, 2, dict(adjust=False, refine=True)),
    (5, 17, 1, dict(max_offered_groups=2)),
    (6, 14, 1, dict(use_detection_value=False, tag_threshold=2.0)),
    (7, 17, 2, dict(nms_kernel=3, topk=5, detection_threshold=0.3)),
    (8, 17, 3, {}),
])
def test_fast_equals_reference_on_random_maps(seed, num_joints, tag_dim,
                                              options, host_path):
    heatmaps, tags = random_maps(seed, num_joints, tag_dim)
    cfg = AEGroupingConfig(**options)
    expected, expected_scores = reference(heatmaps, tags, cfg)
    assert expected.shape[0] >= 2
    for decoder in (group_keypoints, on_device):
        grouped, scores = decoder(heatmaps, tags, cfg)
        # same algorithm, same order of people, bit for bit
        np.testing.assert_array_equal(grouped, expected)
        np.testing.assert_array_equal(scores, expected_scores)


@pytest.mark.parametrize('counts', [(1, ), (1, 4, 16), (4, ), ()])
@pytest.mark.parametrize('tag_dim', [1, 2])
@pytest.mark.parametrize('dense_scoring', [ae_maps._DENSE_SCORING, 0])
def test_refine_search_is_exact(monkeypatch, counts, tag_dim, dense_scoring):
    """Whether the strongest tiles settle a missing joint (all their pixels
    scored, or only those in the pair's box of tags) or the band of tag
    distances does, the refined joints are the official ones (the NumPy
    path's routes)."""
    monkeypatch.setattr(ae_maps, '_ae_kernels', None)
    monkeypatch.setattr(ae_maps, 'REFINE_TILE_COUNTS', counts)
    monkeypatch.setattr(ae_maps, '_DENSE_SCORING', dense_scoring)
    heatmaps, tags = random_maps(20 + tag_dim, tag_dim=tag_dim, people=5)
    grouped, _ = group_keypoints(heatmaps, tags)
    expected, _ = reference(heatmaps, tags)
    np.testing.assert_array_equal(grouped, expected)


def test_no_detections():
    for heatmaps in (np.zeros((17, 32, 32), np.float32),
                     np.full((17, 32, 32), 0.05, np.float32)):
        tags = np.zeros((2 * 17, 32, 32), np.float32)
        for decoder in DECODERS.values():
            grouped, scores = decoder(heatmaps, tags, AEGroupingConfig())
            assert grouped.shape == (0, 17, 5) and grouped.dtype == np.float32
            assert scores.shape == (0, ) and scores.dtype == np.float32


def two_people(num_joints, width=64):
    left = {k: (4 + (k % 4) * 4, 4 + (k // 4) * 8) for k in range(num_joints)}
    right = {k: (x + width // 2, y) for k, (x, y) in left.items()}
    return left, right


def test_crowdpose_14_joints():
    left, right = two_people(14)
    heatmaps, tags = make_maps([(left, 0.0), (right, 3.0)], num_joints=14,
                               noise=0.02)
    grouped, scores = group_keypoints(heatmaps, tags, AEGroupingConfig())
    assert grouped.shape == (2, 14, 4)
    np.testing.assert_allclose(scores, 1.0, atol=1e-6)
    for person in grouped:
        truth = left if person[0, 0] < 32 else right
        expected = np.array([truth[k] for k in range(14)], np.float32)
        assert np.abs(person[:, :2] - 0.5 - expected).max() <= 0.25
    # the reference agrees
    expected, _ = reference(heatmaps, tags, AEGroupingConfig())
    np.testing.assert_array_equal(grouped, expected)


def test_separates_people_with_distinct_tags():
    left, right = two_people(17)
    heatmaps, tags = make_maps([(left, -1.0), (right, 1.0)], tag_dim=2)
    grouped, _ = group_keypoints(heatmaps, tags,
                                 AEGroupingConfig(adjust=False, refine=False))
    assert grouped.shape == (2, 17, 5)
    for person in grouped:
        # every joint found, all from one side, all with one tag
        assert (person[:, 2] > 0.9).all()
        on_right = person[:, 0] >= 32
        assert on_right.all() or not on_right.any()
        assert (person[:, 3:] == person[0, 3]).all()


def test_groups_joints_with_the_same_tag():
    heatmaps, tags = make_maps([({0: (10, 10), 5: (40, 30)}, 2.0)])
    grouped, scores = group_keypoints(heatmaps, tags, AEGroupingConfig())
    assert grouped.shape == (1, 17, 4)
    np.testing.assert_array_equal(grouped[0, [0, 5], 3], [2.0, 2.0])
    assert (grouped[0, [0, 5], 2] > 0.9).all()
    np.testing.assert_allclose(scores, grouped[0, [0, 5], 2].sum() / 17)


def test_joint_with_far_tag_starts_a_new_person():
    heatmaps, tags = make_maps([({0: (10, 10)}, 2.0), ({5: (40, 30)}, 3.5)])
    grouped, _ = group_keypoints(heatmaps, tags, AEGroupingConfig())
    assert grouped.shape[0] == 2


def test_adjust_moves_a_quarter_pixel_uphill():
    heatmaps, tags = make_maps([({0: (10, 20)}, 0.0)])
    heatmaps[0, 20, 11] += 0.01  # right neighbour higher; vertical tie
    grouped, _ = group_keypoints(heatmaps, tags, AEGroupingConfig())
    np.testing.assert_array_equal(grouped[0, 0, :2], [10.75, 20.25])
    plain, _ = group_keypoints(heatmaps, tags,
                               AEGroupingConfig(adjust=False, refine=False))
    np.testing.assert_array_equal(plain[0, 0, :2], [10, 20])


def test_refine_fills_missing_joint_from_tag():
    heatmaps, tags = make_maps([({0: (10, 10), 1: (20, 10)}, 2.0)])
    # a weak (below threshold) response of joint 2 with the person's tag,
    # and a stronger one with another tag
    heatmaps[2, 30, 40] = 0.05
    tags[2, 30, 40] = 2.1
    heatmaps[2, 5, 50] = 0.08
    tags[2, 5, 50] = 5.0
    grouped, scores = group_keypoints(heatmaps, tags, AEGroupingConfig())
    np.testing.assert_allclose(grouped[0, 2], [40.25, 30.25, 0.05, 0],
                               atol=1e-6)
    # the person score is taken before refinement
    np.testing.assert_allclose(scores[0], 2 / 17, atol=1e-6)
    unrefined, _ = group_keypoints(heatmaps, tags,
                                   AEGroupingConfig(refine=False))
    assert unrefined[0, 2, 2] == 0


def test_refine_tie_takes_first_pixel_in_raster_order():
    heatmaps, tags = make_maps([({0: (10, 10)}, 2.0)])
    for x, y in ((50, 40), (45, 40), (60, 30)):  # equal scores
        heatmaps[3, y, x] = 0.5
        tags[3, y, x] = 2.0
    grouped, _ = group_keypoints(heatmaps, tags, AEGroupingConfig())
    np.testing.assert_allclose(grouped[0, 3, :3], [60.25, 30.25, 0.5])


def test_detection_threshold_compares_in_float64():
    """A peak of exactly float32(0.1) = 0.10000000149 is above 0.1."""
    heatmaps, tags = make_maps([({4: (20, 20)}, 0.0)])
    heatmaps *= np.float32(0.1)
    assert heatmaps.max() == np.float32(0.1)
    for decoder in DECODERS.values():
        grouped, _ = decoder(heatmaps, tags, AEGroupingConfig())
        assert grouped.shape[0] == 1


def test_identical_first_tags_share_one_group():
    """Official quirk: groups are keyed by the first tag value, so two seeds
    with an identical tag collapse into one group (the later one stays)."""
    heatmaps, tags = make_maps([({0: (10, 10)}, 1.5),
                                ({0: (50, 40)}, 1.5, 0.9)])
    for decoder in DECODERS.values():
        grouped, _ = decoder(heatmaps, tags,
                             AEGroupingConfig(adjust=False, refine=False))
        assert grouped.shape[0] == 1
        np.testing.assert_allclose(grouped[0, 0, :3], [50, 40, 0.9],
                                   atol=1e-6)


def test_starting_a_group_under_an_existing_key_resets_its_tags():
    """Official quirk: a candidate left unassigned whose first tag equals an
    existing group's key lands in that group (replacing its joint of that
    type) and restarts the group's tag list, which moves the group's mean
    tag for the next joint types."""
    heatmaps, tags = make_maps([
        ({0: (10, 10)}, 1.0),  # seeds the group, key 1.0
        ({1: (10, 20)}, 1.9),  # joins: mean tag 1.45
        ({2: (10, 30)}, 1.0),  # joins (stronger duplicate tag) ...
        ({2: (40, 30)}, 1.0, 0.8),  # ... this one restarts key 1.0: mean 1.0
        ({3: (10, 40)}, 2.1),  # 1.1 from 1.0: a new group
    ])
    for decoder in DECODERS.values():
        grouped, _ = decoder(heatmaps, tags,
                             AEGroupingConfig(adjust=False, refine=False))
        assert grouped.shape[0] == 2
        np.testing.assert_allclose(grouped[0, :3, :2],
                                   [[10, 10], [10, 20], [40, 30]])
        assert grouped[0, 3, 2] == 0 and grouped[1, 3, 2] > 0.9


@pytest.mark.parametrize('tag_dim', [1, 2, 3])
def test_group_mean_tags_are_the_official_means(tag_dim):
    """Five groups grown to 1-17 members (some tags -0.0) and restarted
    under their key, means read after every change: each equals, bit for
    bit, the official ``np.mean`` of the group's list of float32 tags
    (whose sums are pairwise from 8 members when L = 1)."""
    rng = np.random.default_rng(tag_dim)
    num_joints, num_groups = 17, 5

    def random_tag():
        return (rng.normal(0, 3, tag_dim) *
                rng.choice([1e-3, 1, 1e4, -0.0], tag_dim)).astype(np.float32)

    groups = _Groups(num_joints, 3 + tag_dim, capacity=num_groups)
    members = []
    for group in range(num_groups):
        members.append([random_tag()])
        members[-1][0][0] = 10 * group + 1  # distinct keys
        groups.start(0, np.zeros(3 + tag_dim), members[-1][0])
    for _ in range(400):
        group = int(rng.integers(num_groups))
        tag = random_tag()
        if len(members[group]) == num_joints or rng.random() < 0.02:
            tag[0] = members[group][0][0]  # the group's key: a restart
            groups.start(0, np.zeros(3 + tag_dim), tag)
            members[group] = [tag]
        else:
            groups.add(group, len(members[group]), np.zeros(3 + tag_dim),
                       tag)
            members[group].append(tag)
        expected = np.stack([np.mean(tags, axis=0) for tags in members])
        np.testing.assert_array_equal(
            groups.mean_tags(num_groups).view(np.int32),
            expected.view(np.int32))


def test_only_max_offered_groups_are_offered():
    """Joints of a person beyond the first ``max_offered_groups`` groups
    cannot join it and start groups of their own."""
    people = []
    for i in range(3):
        people.append(({k: (6 + 20 * i, 4 + 6 * k) for k in range(4)},
                       3.0 * i))
    heatmaps, tags = make_maps(people, size=(40, 64))
    # make every joint's tag distinct (else the quirk above regroups them)
    for k in range(4):
        tags[k] += 0.01 * k
    cfg = AEGroupingConfig(max_offered_groups=2, adjust=False, refine=False)
    grouped, _ = group_keypoints(heatmaps, tags, cfg)
    assert grouped.shape[0] == 2 + 4
    assert sorted((grouped[:, :, 2] > 0).sum(axis=1).tolist()) == [
        1, 1, 1, 1, 4, 4
    ]
    expected, _ = reference(heatmaps, tags, cfg)
    np.testing.assert_array_equal(grouped, expected)
    uncapped, _ = group_keypoints(heatmaps, tags,
                                  AEGroupingConfig(adjust=False, refine=False))
    assert uncapped.shape[0] == 3


@pytest.mark.parametrize('max_instances', [1, 2, 3, 100])
def test_max_instances_returns_the_best_scored_people(max_instances):
    """``max_instances`` caps the output (MMPose's meaning) at the people
    with the highest scores, in creation order; the grouping itself is that
    of the uncapped decoder."""
    heatmaps, tags = random_maps(11, 17, 2)
    everyone, scores = group_keypoints(heatmaps, tags, AEGroupingConfig())
    assert len(np.unique(scores)) == len(scores) >= 4
    kept = np.sort(np.argsort(-scores)[:max_instances])
    grouped, kept_scores = group_keypoints(
        heatmaps, tags, AEGroupingConfig(max_instances=max_instances))
    np.testing.assert_array_equal(grouped, everyone[kept])
    np.testing.assert_array_equal(kept_scores, scores[kept])
    assert len(grouped) == min(max_instances, len(everyone))


def test_max_instances_must_be_positive():
    with pytest.raises(ValueError, match='decode_max_instances'):
        AEGroupingConfig(max_instances=0)


def test_tensor_inputs():
    heatmaps, tags = random_maps(11, tag_dim=2)
    expected = group_keypoints(heatmaps, tags)
    got = group_keypoints(torch.from_numpy(heatmaps), torch.from_numpy(tags))
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_rejects_bad_shapes():
    # e.g. tags in the (K, H, W, L) layout of the official code
    with pytest.raises(ValueError, match=r'tags must be \(L\*K, H, W\)'):
        group_keypoints(np.zeros((17, 8, 8)), np.zeros((17, 8, 8, 1)))
    with pytest.raises(ValueError, match='tags must be'):
        group_keypoints(np.zeros((17, 8, 8)), np.zeros((25, 8, 8)))
    with pytest.raises(ValueError, match='heatmaps must be'):
        group_keypoints(np.zeros((8, 8)), np.zeros((17, 8, 8)))
    with pytest.raises(ValueError, match='permutation'):
        group_keypoints(np.zeros((17, 8, 8)), np.zeros((17, 8, 8)),
                        AEGroupingConfig(keypoint_order=[0, 1]))


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------


@pytest.mark.parametrize('kernel', [1, 3, 5, 7])
@pytest.mark.parametrize('size', [(3, 4), (20, 33)])
def test_nms_equals_official_max_pool(kernel, size):
    rng = np.random.default_rng(kernel)
    # few distinct values: plateaus; negative values too
    maps = (np.round(rng.random((3, ) + size) * 8) / 8 - 0.25).astype(
        np.float32)
    hm = torch.from_numpy(maps)
    pooled = F.max_pool2d(hm, kernel, 1, kernel // 2)
    np.testing.assert_array_equal(
        ae_maps._local_max_map(maps[1], kernel), pooled[1].numpy())
    official = (hm * torch.eq(pooled, hm).float()).numpy()
    np.testing.assert_array_equal(ae_maps.suppress(maps, kernel),
                                  official)
