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
import os
import sys
from pathlib import Path

if 'torch' not in sys.modules:  # read once, when OpenMP loads with torch
    # Idle OpenMP threads sleep instead of spinning: with other jobs on the
    # cores, spinning threads slow a 2-thread forward down 3-20x.
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = (REPO / 'configs' / 'higherhrnet' / 'coco' /
                  'higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py')
DATA = REPO.parent / 'shared' / 'data'


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


def main(argv=None) -> int:
    args = parse_args(argv)
    import higherhrnet_plugin  # noqa: F401  (first: registers modules)
    import cv2
    import torch
    from mmengine.config import Config

    from higherhrnet_plugin.benchmarks.overhead import (annotations_of,
                                                        measure_overhead,
                                                        planted_models,
                                                        report)
    if args.threads:
        torch.set_num_threads(args.threads)
    image = cv2.imread(str(args.image))
    if image is None:
        raise SystemExit(f'{args.image}: not an image')
    try:
        people = annotations_of(args.image, args.ann_file)
    except (OSError, ValueError) as error:
        raise SystemExit(str(error))
    model, fused, x = planted_models(Config.fromfile(args.config),
                                     args.checkpoint, image, *people)
    times = measure_overhead(model, fused, image, x, args.runs)
    weights = 'real weights' if args.checkpoint else 'planted outputs'
    report(times, model, image, x,
           f'{Path(args.config).name}, {weights}, {args.image.name} '
           f'{image.shape[1]}x{image.shape[0]}', args.runs)
    return 0


if __name__ == '__main__':
    sys.exit(main())
