#!/usr/bin/env python
"""Throughput of batched inference: images/s at several batch sizes, side
by side in one run, with the share of the time spent decoding.

Usage::

    python tools/benchmark_throughput.py [--config CONFIG] [--checkpoint CKPT]
        [--ann-files JSON ...] [--images DIR ...] [--batch-sizes 1 4 8]
        [--rounds 3] [--threads N] [--flip | --no-flip] [--fuse-conv-bn]

Every round runs all images once per batch size (batch sizes alternate, so
load changes on the machine hit all of them alike): the config's test
pipeline, the data preprocessor (padding the batch to a common size), the
network, and the post-processing of every image within its own input
(``inference_bottomup_batch`` does the same). The decode share is the time
in the codec's ``batch_decode`` over the total. Medians over rounds are
printed as a Markdown table, with the people found at each batch size,
which must be the same (exit status 1 otherwise).

Without ``--checkpoint`` (no trained weights can be had offline) the
network runs with random weights, for its cost, but the post-processing
gets the outputs a perfect model would give for the images' annotations
(``--ann-files``, COCO-format with 17 keypoints; see
``higherhrnet_plugin.testing.oracle``): random weights would give maps
nothing like a trained model's, and a meaningless decode time. With
``--checkpoint`` the real outputs are used, on the images of ``--images``.
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
DATA = REPO.parent / 'shared' / 'data'
DEFAULT_ANN_FILES = [DATA / 'coco' / 'test_coco.json',
                     DATA / 'ochuman' / 'test_ochuman.json']
DEFAULT_IMAGES = [DATA / name for name in ('coco', 'crowdpose', 'ochuman')]
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


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


def list_images(folders):
    images = sorted(str(p) for folder in folders for p in folder.iterdir()
                    if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise SystemExit(f'no images in {[str(f) for f in folders]}')
    return images


def annotated_images(model, ann_files):
    """The images of ``ann_files`` with their annotations, as callables
    that run the test pipeline (the annotations go along as
    ``gt_instances``, for the planted outputs)."""
    from mmengine.dataset import ConcatDataset
    from mmpose.registry import DATASETS
    datasets = []
    for ann_file in ann_files:
        if not ann_file.is_file():
            raise SystemExit(f'{ann_file}: no such annotation file')
        cfg = dict(model.cfg.test_dataloader.dataset,
                   data_root=str(ann_file.parent), ann_file=ann_file.name,
                   data_prefix=dict(img=''), bbox_file=None)
        datasets.append(DATASETS.build(cfg))
    dataset = ConcatDataset(datasets)
    return [lambda i=i: dataset[i] for i in range(len(dataset))]


def image_paths(model, folders):
    """The images of ``folders``, as callables that run the test pipeline
    (as ``inference_bottomup`` does)."""
    from higherhrnet_plugin.apis import run_test_pipeline
    return [lambda path=path: run_test_pipeline(model, [path])[0]
            for path in list_images(folders)]


def run_batches(model, images, batch_size: int) -> int:
    """Every image through the test pipeline and ``test_step``, in batches
    of ``batch_size``; returns the number of people found."""
    import torch
    from mmengine.dataset import pseudo_collate
    people = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = [load() for load in images[start:start + batch_size]]
            for sample in model.test_step(pseudo_collate(batch)):
                people += len(sample.pred_instances)
    return people


def main(argv=None) -> int:
    args = parse_args(argv)
    import higherhrnet_plugin  # noqa: F401  (first: registers modules)
    import torch
    from mmengine.config import Config
    from higherhrnet_plugin.apis import fuse_conv_bn, init_model
    from higherhrnet_plugin.testing.oracle import plant_perfect_outputs
    from higherhrnet_plugin.benchmarks.stage_timer import StageTimer
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
    if planted:
        plant_perfect_outputs(model)
        images = annotated_images(model, args.ann_files)
    else:
        images = image_paths(model, args.images)
    distinct = len(images)
    # as many images as the largest batch, at least twice
    images = images * (1 + 2 * max(args.batch_sizes) // distinct)
    hooks = {'decode': [(model.head.decoder, 'batch_decode')]}

    print(f'[throughput] warm-up on {len(images)} images', file=sys.stderr)
    run_batches(model, images[:2], 2)
    seconds = {b: [] for b in args.batch_sizes}
    decode_seconds = {b: [] for b in args.batch_sizes}
    people = {}
    for round_index in range(args.rounds):
        for batch_size in args.batch_sizes:
            print(f'[throughput] round {round_index + 1}/{args.rounds}, '
                  f'batch {batch_size}', file=sys.stderr, flush=True)
            timer = StageTimer()
            with timer.hooked(hooks):
                start = time.perf_counter()
                people[batch_size] = run_batches(model, images, batch_size)
            seconds[batch_size].append(time.perf_counter() - start)
            decode_seconds[batch_size].append(timer.wall['decode'])

    flip = cfg.model.test_cfg.get('flip_test', False)
    outputs = ('random weights, planted perfect outputs' if planted else
               'real weights')
    print(f'{Path(args.config).name} ({outputs}), flip test '
          f'{"on" if flip else "off"}, {len(images)} images ({distinct} '
          f'distinct, sizes vary), device {args.device}, '
          f'{torch.get_num_threads()} torch threads, {args.rounds} rounds, '
          f'load average {os.getloadavg()[0]:.1f}\n')
    print('| batch size | images/s | ms / image | decode share | '
          'vs batch 1 | people found |')
    print('|---:|---:|---:|---:|---:|---:|')
    base = None
    for batch_size in args.batch_sizes:
        total = statistics.median(seconds[batch_size])
        share = statistics.median(
            d / t for d, t in zip(decode_seconds[batch_size],
                                  seconds[batch_size]))
        rate = len(images) / total
        base = base or rate
        print(f'| {batch_size} | {rate:.2f} | {1000 / rate:.0f} | '
              f'{100 * share:.1f}% | {rate / base:.2f}x | '
              f'{people[batch_size]} |')
    # every image gets the same people in any batch (see docs/design.md)
    return 0 if len(set(people.values())) == 1 else 1


if __name__ == '__main__':
    sys.exit(main())
