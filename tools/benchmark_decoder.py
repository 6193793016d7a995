"""Time the AE grouping decoder against MMPose 1.x and the reference loop.

Decodes every case of ``official_decoder_cases.npz`` with

(a) ``higherhrnet_plugin.codecs.ae_grouping.group_keypoints`` (ours),
(b) MMPose 1.x ``AssociativeEmbedding.batch_decode`` (same settings),
(c) the slow per-joint reference loop of ``higherhrnet_plugin/testing/reference_ae_grouping.py``,

interleaving the three (a, b, c, a, b, c, ...) so that load changes on the
machine hit all of them alike, and prints a Markdown table of the median time
per image. It also checks that (a) reproduces the official decoder's output
stored in the fixtures (PASS / FAIL per case; exit status 1 on a FAIL).

Example::

    python tools/benchmark_decoder.py --repeats 5
"""
import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import higherhrnet_plugin  # noqa: E402,F401  (shims before mmpose.*)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmpose.codecs import AssociativeEmbedding  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from higherhrnet_plugin.codecs.ae_grouping import (  # noqa: E402
    COCO_KEYPOINT_ORDER, AEGroupingConfig, group_keypoints)
from higherhrnet_plugin.testing.reference_ae_grouping import \
    reference_group_keypoints  # noqa: E402

DECODERS = ('ours', 'mmpose', 'reference')
LABELS = {
    'ours': '(a) ours, `group_keypoints`',
    'mmpose': '(b) MMPose 1.x `AssociativeEmbedding.batch_decode`',
    'reference': '(c) reference loop (`testing/reference_ae_grouping.py`)',
}
MODES = {
    'adjust_refine': AEGroupingConfig(adjust=True, refine=True),
    'plain': AEGroupingConfig(adjust=False, refine=False),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed rounds over all cases (default 5)')
    parser.add_argument(
        '--fixtures', type=Path, default=REPO.parent / 'shared' / 'fixtures',
        help='folder with official_decoder_cases.npz '
        '(default: ../shared/fixtures beside the repository)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch default)')
    return parser.parse_args()


def log(message):
    print(message, file=sys.stderr, flush=True)


def load_cases(fixtures: Path):
    """Cases as dicts: maps, expected outputs, and the three decoders."""
    path = fixtures / 'official_decoder_cases.npz'
    if not path.exists():
        sys.exit(f'{path} not found; pass --fixtures')
    data = np.load(path)
    ids = sorted(int(key[4:-9]) for key in data.files
                 if key.endswith('_heatmaps'))
    cases = []
    for i in ids:
        heatmaps, tags = data[f'case{i}_heatmaps'], data[f'case{i}_tags']
        cases.append(dict(
            name=f'case{i}', heatmaps=heatmaps, tags=tags,
            expected={mode: (data[f'case{i}_{mode}_grouped'],
                             data[f'case{i}_{mode}_scores'])
                      for mode in MODES},
            run=make_decoders(heatmaps, tags)))
    return cases


def make_decoders(heatmaps: np.ndarray, tags: np.ndarray):
    """The three decoders on one case, inputs prepared outside the timing."""
    num_joints, height, width = heatmaps.shape
    tag_dim = tags.shape[-1]
    codec = AssociativeEmbedding(
        input_size=(width, height), heatmap_size=(width, height),
        decode_keypoint_order=list(COCO_KEYPOINT_ORDER), decode_topk=30,
        decode_max_instances=30, decode_center_shift=0.5)
    batch_heatmaps = torch.from_numpy(heatmaps)[None]
    # MMPose wants (B, L*K, H, W) with channel l*K + k
    batch_tags = torch.from_numpy(np.ascontiguousarray(
        tags.transpose(3, 0, 1, 2)).reshape(tag_dim * num_joints, height,
                                            width))[None]
    cfg = MODES['adjust_refine']
    return {
        'ours': lambda: group_keypoints(heatmaps, tags, cfg),
        'mmpose': lambda: codec.batch_decode(batch_heatmaps, batch_tags),
        'reference': lambda: reference_group_keypoints(heatmaps, tags, cfg),
    }


def same_people(got, expected) -> bool:
    """Same people in any order: keypoints within 1e-3 px, values, tags and
    scores within 1e-5."""
    grouped, scores = got
    want, want_scores = expected
    if grouped.shape != want.shape or scores.shape != want_scores.shape:
        return False
    cost = np.abs(want[:, None] - grouped[None]).sum(axis=(2, 3))
    _, order = linear_sum_assignment(cost)
    grouped, scores = grouped[order], scores[order]
    return bool(
        np.allclose(grouped[..., :2], want[..., :2], rtol=0, atol=1e-3)
        and np.allclose(grouped[..., 2:], want[..., 2:], rtol=0, atol=1e-5)
        and np.allclose(scores, want_scores, rtol=0, atol=1e-5))


def check(cases):
    """PASS/FAIL of ours against the fixtures, in both modes."""
    verdicts = {}
    for case in cases:
        ok = all(
            same_people(group_keypoints(case['heatmaps'], case['tags'], cfg),
                        case['expected'][mode]) for mode, cfg in MODES.items())
        verdicts[case['name']] = 'PASS' if ok else 'FAIL'
        log(f'check {case["name"]}: {verdicts[case["name"]]}')
    return verdicts


def measure(cases, repeats: int):
    """Seconds per (decoder, case): one list of ``repeats`` timings each."""
    times = {d: {c['name']: [] for c in cases} for d in DECODERS}
    log('warm-up')
    for case in cases:
        for decoder in DECODERS:
            case['run'][decoder]()
    for rep in range(repeats):
        log(f'round {rep + 1}/{repeats}')
        for case in cases:
            for decoder in DECODERS:  # interleaved: a, b, c, a, b, c, ...
                start = time.perf_counter()
                case['run'][decoder]()
                times[decoder][case['name']].append(time.perf_counter() -
                                                    start)
    return times


def report(cases, times, verdicts, repeats: int):
    names = [c['name'] for c in cases]
    # per round: mean time per image over the cases; median over rounds
    per_image = {
        d: statistics.median(
            sum(times[d][n][r] for n in names) / len(names)
            for r in range(repeats)) * 1e3
        for d in DECODERS
    }
    ours = per_image['ours']
    print(f'AE grouping decoder, {len(names)} fixture cases, {repeats} '
          f'rounds, CPU only: {platform.processor() or platform.machine()}, '
          f'{torch.get_num_threads()} torch threads, '
          f'torch {torch.__version__}, numpy {np.__version__}\n')
    print('| decoder | median ms / image | time / ours |')
    print('|---|---:|---:|')
    for d in DECODERS:
        print(f'| {LABELS[d]} | {per_image[d]:.1f} | '
              f'{per_image[d] / ours:.1f}x |')
    print(f'\nratios: c/a = {per_image["reference"] / ours:.1f}, '
          f'b/a = {per_image["mmpose"] / ours:.1f}\n')
    print('| case | K x H x W, L | people | (a) ms | (b) ms | (c) ms '
          '| (a) vs official |')
    print('|---|---|---:|---:|---:|---:|---|')
    for case in cases:
        n = case['name']
        k, h, w = case['heatmaps'].shape
        med = {d: statistics.median(times[d][n]) * 1e3 for d in DECODERS}
        print(f'| {n} | {k} x {h} x {w}, {case["tags"].shape[-1]} | '
              f'{len(case["expected"]["adjust_refine"][0])} | '
              f'{med["ours"]:.1f} | {med["mmpose"]:.1f} | '
              f'{med["reference"]:.1f} | {verdicts[n]} |')


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = load_cases(args.fixtures)
    verdicts = check(cases)
    times = measure(cases, args.repeats)
    report(cases, times, verdicts, args.repeats)
    return 0 if all(v == 'PASS' for v in verdicts.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
