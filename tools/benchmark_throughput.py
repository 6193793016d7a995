#!/usr/bin/env python
"""Throughput of batched inference: images/s at several batch sizes, side
by side in one run, with the share of the time spent decoding.

Usage::

    python tools/benchmark_throughput.py [--config CONFIG] [--checkpoint CKPT]
        [--ann-files JSON ...] [--images DIR ...] [--batch-sizes 1 4 8]
        [--rounds 3] [--threads N] [--flip | --no-flip] [--fuse-conv-bn]

What runs and how it is timed: ``higherhrnet_plugin.benchmarks.throughput``.
Medians over rounds are printed as a Markdown table, with the people found
at each batch size, which must be the same (exit status 1 otherwise).

Without ``--checkpoint`` (no trained weights can be had offline) the
network runs with random weights, for its cost, but the post-processing
gets the outputs a perfect model would give for the images' annotations
(``--ann-files``, COCO-format with 17 keypoints; see
``higherhrnet_plugin.testing.oracle``): random weights would give maps
nothing like a trained model's, and a meaningless decode time. With
``--checkpoint`` the real outputs are used, on the images of ``--images``.
"""
import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = (REPO / 'configs' / 'higherhrnet' / 'coco' /
                  'higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py')
DATA = REPO.parent / 'shared' / 'data'
DEFAULT_ANN_FILES = [DATA / 'coco' / 'test_coco.json',
                     DATA / 'ochuman' / 'test_ochuman.json']
DEFAULT_IMAGES = [DATA / name for name in ('coco', 'crowdpose', 'ochuman')]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=str(DEFAULT_CONFIG))
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--ann-files', nargs='+', type=Path,
                        default=DEFAULT_ANN_FILES,
                        help='without --checkpoint: COCO-format annotations '
                        'of the images (beside them) to plant perfect '
                        'outputs from (default: COCO and OCHuman images of '
                        '../shared/data)')
    parser.add_argument('--images', nargs='+', type=Path,
                        default=DEFAULT_IMAGES,
                        help='with --checkpoint: folders of images (default: '
                        'the real images in ../shared/data)')
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


def main(argv=None) -> int:
    args = parse_args(argv)
    import higherhrnet_plugin  # noqa: F401  (first: registers modules)
    import torch
    from mmengine.config import Config
    from higherhrnet_plugin.apis import fuse_conv_bn, init_model
    from higherhrnet_plugin.benchmarks.throughput import (annotated_images,
                                                          describe_run,
                                                          image_loaders,
                                                          measure_throughput)
    from higherhrnet_plugin.testing.oracle import plant_perfect_outputs
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.flip is not None:
        cfg.model.test_cfg.flip_test = args.flip
    torch.manual_seed(0)
    model = init_model(cfg, args.checkpoint, device=args.device)
    if args.fuse_conv_bn:
        fuse_conv_bn(model)
    planted = args.checkpoint is None
    try:
        if planted:
            plant_perfect_outputs(model)
            images = annotated_images(model, args.ann_files)
        else:
            images = image_loaders(model, args.images)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(str(error))
    distinct = len(images)
    # as many images as the largest batch, at least twice
    images = images * (1 + 2 * max(args.batch_sizes) // distinct)
    result = measure_throughput(model, images, args.batch_sizes, args.rounds)
    print(describe_run(args.config, planted,
                       cfg.model.test_cfg.get('flip_test', False),
                       len(images), distinct, args.device, args.rounds) +
          '\n')
    print(result.table())
    return 0 if result.consistent() else 1


if __name__ == '__main__':
    sys.exit(main())
