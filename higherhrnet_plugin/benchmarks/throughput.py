"""Throughput of batched inference (``tools/benchmark_throughput.py``):
images/s at several batch sizes, side by side in one run, with the share of
the time spent decoding and the people found at each batch size.

Every round runs all images once per batch size (batch sizes alternate, so
load changes on the machine hit all of them alike): the config's test
pipeline, the data preprocessor (padding the batch to a common size), the
network, and the post-processing of every image within its own input (as
``inference_bottomup_batch`` does). The decode share is the time in the
codec's ``batch_decode`` over the total.
"""
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Sequence

from .stage_timer import StageTimer

#: Loads one image through the test pipeline: a packed sample.
ImageLoader = Callable[[], dict]


def image_files(folders: Sequence[Path]) -> List[Path]:
    """The images (by extension, as the demo reads them) of ``folders``, in
    name order, not searched recursively.

    Raises:
        FileNotFoundError: if a folder is missing.
        ValueError: if there are no images.
    """
    from ..apis.demo import IMAGE_EXTENSIONS
    for folder in folders:
        if not Path(folder).is_dir():
            raise FileNotFoundError(f'{folder}: no such folder')
    images = sorted(p for folder in folders for p in Path(folder).iterdir()
                    if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise ValueError(f'no images in {", ".join(map(str, folders))}')
    return images


def annotated_images(model, ann_files: Sequence[Path]) -> List[ImageLoader]:
    """The images of COCO-format ``ann_files`` (images beside them), each
    with its annotations as ``gt_instances`` (for planted outputs, see
    :func:`~higherhrnet_plugin.testing.oracle.plant_perfect_outputs`).

    Raises:
        FileNotFoundError: if an annotation file is missing.
    """
    from mmengine.dataset import ConcatDataset
    from mmpose.registry import DATASETS
    datasets = []
    for ann_file in map(Path, ann_files):
        if not ann_file.is_file():
            raise FileNotFoundError(f'{ann_file}: no such annotation file')
        cfg = dict(model.cfg.test_dataloader.dataset,
                   data_root=str(ann_file.parent), ann_file=ann_file.name,
                   data_prefix=dict(img=''), bbox_file=None)
        datasets.append(DATASETS.build(cfg))
    dataset = ConcatDataset(datasets)
    return [lambda i=i: dataset[i] for i in range(len(dataset))]


def image_loaders(model, folders: Sequence[Path]) -> List[ImageLoader]:
    """The images of ``folders`` through the test pipeline, as
    ``inference_bottomup`` runs it."""
    from ..apis import run_test_pipeline
    return [lambda path=path: run_test_pipeline(model, [str(path)])[0]
            for path in image_files(folders)]


def run_batches(model, images: Sequence[ImageLoader],
                batch_size: int) -> int:
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


@dataclass
class Throughput:
    """Per batch size: seconds of each round over all images, seconds of
    them in the decoder, and the people found."""
    num_images: int
    seconds: Dict[int, List[float]] = field(default_factory=dict)
    decode_seconds: Dict[int, List[float]] = field(default_factory=dict)
    people: Dict[int, int] = field(default_factory=dict)

    def consistent(self) -> bool:
        """Every batch size found the same people (see docs/design.md)."""
        return len(set(self.people.values())) == 1

    def table(self) -> str:
        """Markdown: images/s, ms per image, decode share, speed against
        the first batch size and people found (medians over rounds)."""
        lines = ['| batch size | images/s | ms / image | decode share | '
                 'vs batch 1 | people found |',
                 '|---:|---:|---:|---:|---:|---:|']
        base = None
        for batch_size, seconds in self.seconds.items():
            rate = self.num_images / statistics.median(seconds)
            base = base or rate
            share = statistics.median(
                d / t for d, t in zip(self.decode_seconds[batch_size],
                                      seconds))
            lines.append(f'| {batch_size} | {rate:.2f} | {1000 / rate:.0f} | '
                         f'{100 * share:.1f}% | {rate / base:.2f}x | '
                         f'{self.people[batch_size]} |')
        return '\n'.join(lines)


def measure_throughput(model, images: Sequence[ImageLoader],
                       batch_sizes: Sequence[int],
                       rounds: int) -> Throughput:
    """Time ``rounds`` rounds over ``images`` at every batch size, batch
    sizes alternating within a round (progress on stderr)."""
    hooks = {'decode': [(model.head.decoder, 'batch_decode')]}
    print(f'[throughput] warm-up on {len(images)} images', file=sys.stderr)
    run_batches(model, images[:2], 2)
    result = Throughput(len(images))
    for round_index in range(rounds):
        for batch_size in batch_sizes:
            print(f'[throughput] round {round_index + 1}/{rounds}, '
                  f'batch {batch_size}', file=sys.stderr, flush=True)
            timer = StageTimer()
            with timer.hooked(hooks):
                start = time.perf_counter()
                result.people[batch_size] = run_batches(model, images,
                                                        batch_size)
            result.seconds.setdefault(batch_size, []).append(
                time.perf_counter() - start)
            result.decode_seconds.setdefault(batch_size, []).append(
                timer.wall['decode'])
    return result


def describe_run(config: str, planted: bool, flip: bool, num_images: int,
                 distinct: int, device: str, rounds: int) -> str:
    """The line above the table: what ran, where, under what load."""
    import torch
    outputs = ('random weights, planted perfect outputs' if planted else
               'real weights')
    return (f'{Path(config).name} ({outputs}), flip test '
            f'{"on" if flip else "off"}, {num_images} images ({distinct} '
            f'distinct, sizes vary), device {device}, '
            f'{torch.get_num_threads()} torch threads, {rounds} rounds, '
            f'load average {os.getloadavg()[0]:.1f}')
