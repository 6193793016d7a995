#!/usr/bin/env python
"""Throughput of batched inference: images/s at several batch sizes, side
by side in one run, with the share of the time spent decoding.

Usage::

    python tools/benchmark_throughput.py [--config CONFIG] [--checkpoint CKPT]
        [--images DIR ...] [--batch-sizes 1 4 8] [--rounds 3] [--threads N]
        [--flip | --no-flip] [--fuse-conv-bn]

Every round runs all images once per batch size (batch sizes alternate, so
load changes on the machine hit all of them alike) through
``inference_bottomup_batch``: the config's test pipeline, the data
preprocessor (padding the batch to a common size), the network, and the
post-processing of every image within its own input. The decode share is
the time inside the codec's ``batch_decode`` over the total. Medians over
rounds are printed as a Markdown table. Weights are random unless
``--checkpoint`` is given (network time does not depend on them; decoding
does: it grows with the number of candidate people).
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = (REPO / 'configs' / 'higherhrnet' / 'coco' /
                  'higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py')
DEFAULT_IMAGES = [REPO.parent / 'shared' / 'data' / name
                  for name in ('coco', 'crowdpose', 'ochuman')]
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=str(DEFAULT_CONFIG))
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--images', nargs='+', type=Path,
                        default=DEFAULT_IMAGES,
                        help='folders of images (default: the real images '
                        'in ../shared/data)')
    parser.add_argument('--batch-sizes', nargs='+', type=int,
                        default=[1, 4, 8])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--flip', action=argparse.BooleanOptionalAction,
                        default=None,
                        help='flip test on / off (default: as the config)')
    parser.add_argument('--fuse-conv-bn', action='store_true',
                        help='fold BatchNorm into the convolutions first')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


class Stopwatch:
    """Wraps a callable and adds up the seconds spent in it."""

    def __init__(self, fn):
        self.fn = fn
        self.seconds = 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def list_images(folders):
    images = sorted(str(p) for folder in folders for p in folder.iterdir()
                    if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise SystemExit(f'no images in {[str(f) for f in folders]}')
    return images


def main(argv=None) -> int:
    args = parse_args(argv)
    import higherhrnet_plugin  # noqa: F401  (first: registers modules)
    import torch
    from mmengine.config import Config
    from higherhrnet_plugin.apis import (fuse_conv_bn,
                                         inference_bottomup_batch, init_model)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.flip is not None:
        cfg.model.test_cfg.flip_test = args.flip
    torch.manual_seed(0)
    model = init_model(cfg, args.checkpoint, device=args.device)
    if args.fuse_conv_bn:
        fuse_conv_bn(model)
    decode = Stopwatch(model.head.decoder.batch_decode)
    model.head.decoder.batch_decode = decode
    images = list_images(args.images)
    # as many images as the largest batch, at least twice
    images = (images * (1 + 2 * max(args.batch_sizes) // len(images)))

    print(f'[throughput] warm-up on {len(images)} images', file=sys.stderr)
    inference_bottomup_batch(model, images[:2], 2)
    seconds = {b: [] for b in args.batch_sizes}
    decode_seconds = {b: [] for b in args.batch_sizes}
    for round_index in range(args.rounds):
        for batch_size in args.batch_sizes:
            print(f'[throughput] round {round_index + 1}/{args.rounds}, '
                  f'batch {batch_size}', file=sys.stderr, flush=True)
            decode.seconds = 0.0
            start = time.perf_counter()
            inference_bottomup_batch(model, images, batch_size)
            seconds[batch_size].append(time.perf_counter() - start)
            decode_seconds[batch_size].append(decode.seconds)

    flip = cfg.model.test_cfg.get('flip_test', False)
    print(f'{Path(args.config).name}'
          f'{" (random weights)" if args.checkpoint is None else ""}, '
          f'flip test {"on" if flip else "off"}, {len(images)} images '
          f'({len(set(images))} distinct, sizes vary), device {args.device}, '
          f'{torch.get_num_threads()} torch threads, {args.rounds} rounds, '
          f'load average {os.getloadavg()[0]:.1f}\n')
    print('| batch size | images/s | ms / image | decode share | '
          'vs batch 1 |')
    print('|---:|---:|---:|---:|---:|')
    base = None
    for batch_size in args.batch_sizes:
        total = statistics.median(seconds[batch_size])
        share = statistics.median(
            d / t for d, t in zip(decode_seconds[batch_size],
                                  seconds[batch_size]))
        rate = len(images) / total
        base = base or rate
        print(f'| {batch_size} | {rate:.2f} | {1000 / rate:.0f} | '
              f'{100 * share:.1f}% | {rate / base:.2f}x |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
