#!/usr/bin/env python
"""Inference overhead: ``inference_bottomup`` with flip test against the two
forward passes it needs, side by side, and the speed-up of BatchNorm fusion.

Usage::

    python tools/benchmark_overhead.py [--config CONFIG] [--checkpoint CKPT]
        [--image IMAGE --ann-file ANN] [--runs 7] [--threads N]

On one real photo (default: a COCO image of ../shared/data with 4 people)
four things are timed in turn, ``--runs`` times, and their medians printed:

(a) the two forward passes of flip test on the preprocessed input,
    ``network(x)`` and ``network(x.flip(-1))``;
(b) ``inference_bottomup(model, image)``: test pipeline, data preprocessor,
    the same two forward passes, aggregation, grouping, mapping back;
(c), (d) the same with BatchNorm folded into the convolutions
    (``fuse_conv_bn``).

The ratio (b) / (a) is the end-to-end overhead (target: at most 1.05); the
time of (b) beyond the two forward passes is split into the data
preprocessor, the aggregation of the views (resizes to the input size, flip
undone, averages), the decoder and the rest (test pipeline, cropping,
mapping back to the image). Idle OpenMP threads sleep
(``OMP_WAIT_POLICY=PASSIVE`` unless set), as in ``tools/benchmark.py``.

No trained weights are available offline, and random weights give maps
nothing like a trained model's (no peaks, or thousands), which would make
the decoding time meaningless. So the network runs at full cost, but its
outputs are replaced by the outputs a perfect model would give for the
image's annotations (``higherhrnet_plugin.testing.oracle``, computed once,
before timing): the decoder then sees a trained model's kind of maps
(cleaner: a background of exact zeros, and symmetric peaks, which become
plateaus of tied pixels once upsampled). With ``--checkpoint`` the real
outputs are used instead.
"""
import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

if 'torch' not in sys.modules:  # read once, when OpenMP loads with torch
    # Idle OpenMP threads sleep instead of spinning: with other jobs on the
    # cores, spinning threads slow a 2-thread forward down 3-20x.
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = (REPO / 'configs' / 'higherhrnet' / 'coco' /
                  'higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py')
DATA = REPO.parent / 'shared' / 'data'
TARGET_RATIO = 1.05


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=str(DEFAULT_CONFIG))
    parser.add_argument('--checkpoint', default=None,
                        help='real weights (and real outputs)')
    parser.add_argument('--image', type=Path,
                        default=DATA / 'coco' / '000000196141.jpg')
    parser.add_argument('--ann-file', type=Path,
                        default=DATA / 'coco' / 'test_coco.json',
                        help='COCO keypoint annotations of --image (for '
                        'the planted outputs)')
    parser.add_argument('--runs', type=int, default=7)
    parser.add_argument('--threads', type=int, default=None)
    return parser.parse_args(argv)


def annotations_of(image: Path, ann_file: Path):
    """(N, K, 2) keypoints and (N, K) visibility of ``image``."""
    import numpy as np
    data = json.loads(ann_file.read_text())
    (image_id, ) = [i['id'] for i in data['images']
                    if i['file_name'] == image.name]
    anns = [a for a in data['annotations'] if a['image_id'] == image_id]
    keypoints = np.array([a['keypoints'] for a in anns],
                         np.float64).reshape(len(anns), -1, 3)
    return keypoints[..., :2], (keypoints[..., 2] > 0).astype(np.float32)


def planted_views(model, image, keypoints, visible):
    """Perfect outputs of the original and the flipped view, as tensors."""
    import torch

    from higherhrnet_plugin.apis import network_inputs
    from higherhrnet_plugin.testing.oracle import perfect_outputs
    from mmengine.dataset import Compose
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    meta = pipeline(dict(img=image, **model.dataset_meta))['data_samples']
    meta = dict(meta.metainfo)
    x = network_inputs(model, image)
    size = (x.shape[-1], x.shape[-2])
    return x, [[
        torch.from_numpy(o[None]) for o in perfect_outputs(
            keypoints, visible, meta, size, flipped,
            model.head.layout.with_ae)
    ] for flipped in (False, True)]


def main(argv=None) -> int:
    args = parse_args(argv)
    import higherhrnet_plugin  # noqa: F401  (first: registers modules)
    import copy

    import cv2
    import torch
    from mmengine.config import Config
    from mmpose.apis import inference_bottomup

    from higherhrnet_plugin.apis import fuse_conv_bn, init_model
    from higherhrnet_plugin.testing.oracle import PlantedNetwork
    from higherhrnet_plugin.benchmarks.stage_timer import StageTimer
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    cfg.model.test_cfg.flip_test = True
    torch.manual_seed(0)
    model = init_model(cfg, args.checkpoint, device='cpu')
    if args.checkpoint is None:
        model.init_weights()
    fused = fuse_conv_bn(copy.deepcopy(model))
    image = cv2.imread(str(args.image))
    x, views = planted_views(model, image,
                             *annotations_of(args.image, args.ann_file))
    models = {'': model, 'fused': fused}
    if args.checkpoint is None:
        for m in models.values():
            # flip test runs the original view, then the flipped one
            calls = itertools.count()
            m.network = PlantedNetwork(
                m.network, lambda x, calls=calls: views[next(calls) % 2])

    def forwards(m):
        network = getattr(m.network, 'network', m.network)
        with torch.no_grad():
            network(x)
            network(x.flip(-1))

    cases = {
        '(a) two forward passes': lambda: forwards(model),
        '(b) inference_bottomup, flip test': lambda: inference_bottomup(
            model, image),
        '(c) two forward passes, fused BN': lambda: forwards(fused),
        '(d) inference_bottomup, fused BN': lambda: inference_bottomup(
            fused, image),
    }
    print(f'[overhead] warm-up, input {tuple(x.shape)}', file=sys.stderr)
    for run in cases.values():
        run()
    times = {name: [] for name in cases}
    stages = []  # per run of (b): StageTimer
    for i in range(args.runs):
        print(f'[overhead] run {i + 1}/{args.runs}', file=sys.stderr,
              flush=True)
        for name, run in cases.items():
            timer = StageTimer()
            with timer.hooked(overhead_hooks(model) if name.startswith('(b)')
                              else {}):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
            if name.startswith('(b)'):
                stages.append(timer)
    report(args, image, x, model, times, stages)
    return 0


def overhead_hooks(model):
    """The parts of ``inference_bottomup`` timed separately."""
    from higherhrnet_plugin.models import postprocess
    return {
        'network': [(model, 'network')],
        'data preprocessor': [(model.data_preprocessor, 'forward')],
        'aggregation': [(postprocess, 'aggregate_views')],
        'decoder': [(model.head.decoder, 'batch_decode')],
    }


def report(args, image, x, model, times, stages):
    import torch
    from mmpose.apis import inference_bottomup
    med = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    forwards, end_to_end, fused_forwards, fused_end_to_end = med.values()
    people = len(inference_bottomup(model, image)[0].pred_instances)
    print(f'{Path(args.config).name}, '
          f'{"real weights" if args.checkpoint else "planted outputs"}, '
          f'{args.image.name} {image.shape[1]}x{image.shape[0]} -> input '
          f'{x.shape[-1]}x{x.shape[-2]}, flip test, {people} people found, '
          f'{torch.get_num_threads()} torch threads (OMP_WAIT_POLICY='
          f'{os.environ.get("OMP_WAIT_POLICY", "unset")}), median of '
          f'{args.runs} runs, load average {os.getloadavg()[0]:.1f}\n')
    print('| | median ms | min ms |')
    print('|---|---:|---:|')
    for name in times:
        print(f'| {name} | {med[name]:.0f} | {min(times[name]) * 1e3:.0f} |')
    names = list(times)
    parts = {
        stage: statistics.median(t.wall.get(stage, 0.0) for t in stages) *
        1e3 for stage in overhead_hooks(model) if stage != 'network'
    }
    rest = statistics.median(
        total - sum(timer.wall.values())
        for total, timer in zip(times[names[1]], stages)) * 1e3
    print('\n(b) beyond the network, median ms: ' + ', '.join(
        f'{stage} {ms:.0f}' for stage, ms in parts.items()) +
          f', rest (test pipeline, cropping, mapping back) {rest:.0f}')
    # ratios of runs next to each other in time, less exposed to load drift
    ratio = statistics.median(
        b / a for a, b in zip(times[names[0]], times[names[1]]))
    fused_ratio = statistics.median(
        d / c for c, d in zip(times[names[2]], times[names[3]]))
    own = statistics.median(
        total / timer.wall['network']
        for total, timer in zip(times[names[1]], stages))
    verdict = 'met' if ratio <= TARGET_RATIO else 'NOT met'
    print(f'\nend-to-end / forwards (median over runs): {ratio:.3f} (target '
          f'<= {TARGET_RATIO}: {verdict}); (b) against its own network '
          f'time: {own:.3f}; with fused BN: {fused_ratio:.3f}')
    print(f'BatchNorm fusion: forwards {forwards / fused_forwards:.3f}x, '
          f'inference_bottomup {end_to_end / fused_end_to_end:.3f}x as fast')


if __name__ == '__main__':
    sys.exit(main())
