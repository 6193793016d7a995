"""Inference overhead (``tools/benchmark_overhead.py``):
``inference_bottomup`` with flip test against the two forward passes it
needs, side by side, and the speed-up of BatchNorm fusion.

Four things are timed in turn, run after run: (a) the two forward passes of
flip test on the preprocessed input; (b) ``inference_bottomup(model,
image)``; (c), (d) the same with BatchNorm folded into the convolutions.
The ratio (b) / (a) is the end-to-end overhead; the time of (b) beyond the
two forward passes is split into the data preprocessor, the aggregation of
the views, the decoder and the rest (test pipeline, cropping, mapping back).

Without trained weights (none can be had offline) the network runs at full
cost, but its outputs are replaced by what a perfect model would give for
the image's annotations (:mod:`higherhrnet_plugin.testing.oracle`, computed
once, before timing), so that the decoder sees a trained model's kind of
maps.
"""
import copy
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .stage_timer import StageTimer

#: Target of (b) / (a).
TARGET_RATIO = 1.05


def annotations_of(image: Path, ann_file: Path):
    """(N, K, 2) keypoints and (N, K) visibility of ``image`` in the COCO
    file ``ann_file``.

    Raises:
        ValueError: if ``ann_file`` has no image of that file name.
    """
    import numpy as np
    data = json.loads(Path(ann_file).read_text())
    ids = [i['id'] for i in data['images'] if i['file_name'] == image.name]
    if len(ids) != 1:
        raise ValueError(f'{ann_file}: no image {image.name} (needed for '
                         'the planted outputs; give --ann-file)')
    image_id = ids[0]
    anns = [a for a in data['annotations'] if a['image_id'] == image_id]
    keypoints = np.array([a['keypoints'] for a in anns],
                         np.float64).reshape(len(anns), -1, 3)
    return keypoints[..., :2], (keypoints[..., 2] > 0).astype(np.float32)


def planted_views(model, image, keypoints, visible):
    """Perfect outputs of the original and the flipped view, as tensors."""
    import torch

    from mmengine.dataset import Compose

    from ..apis import network_inputs
    from ..testing.oracle import perfect_outputs
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


def overhead_hooks(model):
    """The parts of ``inference_bottomup`` timed separately."""
    from ..models import postprocess
    return {
        'network': [(model, 'network')],
        'data preprocessor': [(model.data_preprocessor, 'forward')],
        'aggregation': [(postprocess, 'aggregate_views')],
        'decoder': [(model.head.decoder, 'batch_decode')],
    }


def planted_models(cfg, checkpoint: Optional[str], image, keypoints,
                   visible):
    """The model of ``cfg`` and a copy with BatchNorm fused, and the
    preprocessed input of ``image``. Without ``checkpoint`` both networks
    hand over the planted perfect outputs of the two flip views.

    Returns:
        tuple: model, fused model, input (1, 3, h, w).
    """
    import torch

    from ..apis import fuse_conv_bn, init_model
    from ..testing.oracle import PlantedNetwork
    cfg.model.test_cfg.flip_test = True
    torch.manual_seed(0)
    model = init_model(cfg, checkpoint, device='cpu')
    if checkpoint is None:
        model.init_weights()
    fused = fuse_conv_bn(copy.deepcopy(model))
    x, views = planted_views(model, image, keypoints, visible)
    if checkpoint is None:
        for m in (model, fused):
            # flip test runs the original view, then the flipped one
            calls = itertools.count()
            m.network = PlantedNetwork(
                m.network, lambda x, calls=calls: views[next(calls) % 2])
    return model, fused, x


#: The four timings, in the order they run.
CASES = ('(a) two forward passes', '(b) inference_bottomup, flip test',
         '(c) two forward passes, fused BN',
         '(d) inference_bottomup, fused BN')


def measure_overhead(model, fused, image, x, runs: int
                     ) -> Dict[str, List]:
    """Time the four :data:`CASES` in turn, ``runs`` times after a
    warm-up (progress on stderr).

    Returns:
        dict: case -> seconds per run, and ``'stages'``: the
        :class:`StageTimer` of each run of (b) (:func:`overhead_hooks`).
    """
    import torch
    from mmpose.apis import inference_bottomup

    def forwards(m):
        network = getattr(m.network, 'network', m.network)
        with torch.no_grad():
            network(x)
            network(x.flip(-1))

    cases: Dict[str, Callable[[], object]] = dict(zip(CASES, (
        lambda: forwards(model), lambda: inference_bottomup(model, image),
        lambda: forwards(fused), lambda: inference_bottomup(fused, image))))
    print(f'[overhead] warm-up, input {tuple(x.shape)}', file=sys.stderr)
    for run in cases.values():
        run()
    times = {name: [] for name in cases}
    stages = []
    for i in range(runs):
        print(f'[overhead] run {i + 1}/{runs}', file=sys.stderr, flush=True)
        for name, run in cases.items():
            timer = StageTimer()
            end_to_end = name == CASES[1]
            with timer.hooked(overhead_hooks(model) if end_to_end else {}):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
            if end_to_end:
                stages.append(timer)
    return dict(times, stages=stages)


def report(times: Dict[str, List], model, image, x, description: str,
           runs: int) -> None:
    """Print the medians of :func:`measure_overhead`, (b) split into its
    parts, the ratios against :data:`TARGET_RATIO` and the fusion
    speed-up. ``description`` names the config, weights and image."""
    import torch
    from mmpose.apis import inference_bottomup
    stages = times['stages']
    a, b, c, d = (times[name] for name in CASES)
    med = {name: statistics.median(times[name]) * 1e3 for name in CASES}
    people = len(inference_bottomup(model, image)[0].pred_instances)
    print(f'{description} -> input {x.shape[-1]}x{x.shape[-2]}, flip test, '
          f'{people} people found, {torch.get_num_threads()} torch threads '
          f'(OMP_WAIT_POLICY={os.environ.get("OMP_WAIT_POLICY", "unset")}), '
          f'median of {runs} runs, load average '
          f'{os.getloadavg()[0]:.1f}\n')
    print('| | median ms | min ms |')
    print('|---|---:|---:|')
    for name in CASES:
        print(f'| {name} | {med[name]:.0f} | {min(times[name]) * 1e3:.0f} |')
    parts = {
        stage: statistics.median(t.wall.get(stage, 0.0) for t in stages) *
        1e3 for stage in overhead_hooks(model) if stage != 'network'
    }
    rest = statistics.median(total - sum(timer.wall.values())
                             for total, timer in zip(b, stages)) * 1e3
    print('\n(b) beyond the network, median ms: ' + ', '.join(
        f'{stage} {ms:.0f}' for stage, ms in parts.items()) +
          f', rest (test pipeline, cropping, mapping back) {rest:.0f}')
    # ratios of runs next to each other in time, less exposed to load drift
    ratio = statistics.median(y / z for z, y in zip(a, b))
    fused_ratio = statistics.median(y / z for z, y in zip(c, d))
    own = statistics.median(total / timer.wall['network']
                            for total, timer in zip(b, stages))
    verdict = 'met' if ratio <= TARGET_RATIO else 'NOT met'
    print(f'\nend-to-end / forwards (median over runs): {ratio:.3f} (target '
          f'<= {TARGET_RATIO}: {verdict}); (b) against its own network '
          f'time: {own:.3f}; with fused BN: {fused_ratio:.3f}')
    print(f'BatchNorm fusion: forwards {med[CASES[0]] / med[CASES[2]]:.3f}x, '
          f'inference_bottomup {med[CASES[1]] / med[CASES[3]]:.3f}x as fast')
