"""The plugin's training targets beside the official HigherHRNet's.

``fixtures/official_train_targets.npz`` (see its README) holds the official
targets of the four ``data/coco`` images under fixed augmentations. The
helpers here run a config's real train pipeline with the same augmentation
and compare: used by ``tests/test_official_train_targets.py`` and
``tools/check_train_targets.py``.
"""
import copy
import json
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Set, Tuple
from unittest import mock

import numpy as np

from ..datasets.transforms import higherhrnet_random_affine
from ..datasets.transforms.higherhrnet_random_affine import AffineDraw

TagSets = Dict[int, Set[Tuple[int, int]]]


class TargetComparison(NamedTuple):
    """How one sample's targets differ from the official ones."""
    heatmap_error: Tuple[float, ...]  # max abs difference per resolution
    mask_mismatches: Tuple[int, ...]  # differing pixels per resolution
    people_with_other_tags: int  # persons whose tag joint sets differ
    people: int  # persons in either set


class OfficialTrainTargets:
    """The arrays of ``official_train_targets.npz`` by entry.

    Args:
        path (Path): the ``.npz`` file.
    """

    def __init__(self, path: Path):
        self.arrays = np.load(path)
        meta = json.loads(str(self.arrays['meta_json']))
        self.resolutions: List[int] = list(meta['output_sizes'])
        self.tag_resolution: int = meta['tag_resolution']
        self.cases = {case['name']: case for case in meta['cases']}
        self.entries: List[str] = [str(e) for e in self.arrays['entries']]

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def case(self, entry: str) -> dict:
        return self.cases[entry.split('_')[0]]

    def draw(self, entry: str) -> AffineDraw:
        """The official random draw of the entry's case."""
        case = self.case(entry)
        return AffineDraw(case['scale_factor'], case['rotation_deg'],
                          tuple(case['shift_px']))

    def annotations(self, entry: str, coco_json: Path,
                    work_dir: Path) -> Path:
        """The entry's annotation file: ``coco_json``, plus the synthetic
        crowd annotation (written to ``work_dir``) for the ``crowd`` case."""
        if self.case(entry)['name'] != 'crowd':
            return coco_json
        annotations = json.loads(Path(coco_json).read_text())
        annotations['annotations'].append(
            json.loads(str(self.arrays['crowd_annotation_json'])))
        path = Path(work_dir) / 'coco_with_crowd.json'
        path.write_text(json.dumps(annotations))
        return path

    def tag_sets(self, entry: str) -> TagSets:
        """{annotation id: {(joint, flat pixel index)}} of the official
        joints at the tag resolution."""
        joints = self.arrays[f'{entry}_joints_{self.tag_resolution}']
        area = self.tag_resolution**2
        return {
            int(ann_id): {(int(v) // area, int(v) % area)
                          for v, used in joints[row] if used > 0}
            for row, ann_id in enumerate(self.arrays[f'{entry}_ann_ids'])
        }

    def compare(self, entry: str, sample) -> TargetComparison:
        """Compare a packed sample (``PoseDataSample``) with the entry."""
        heatmap_error, mask_mismatches = [], []
        for level, res in enumerate(self.resolutions):
            fields = sample.gt_fields[level]
            heatmap_error.append(float(np.abs(
                fields.heatmaps.numpy() -
                self.arrays[f'{entry}_heatmaps_{res}']).max()))
            mask_mismatches.append(int((
                fields.heatmap_mask.numpy() !=
                self.arrays[f'{entry}_masks_{res}']).sum()))
        official, ours = self.tag_sets(entry), sample_tag_sets(sample)
        people = set(official) | set(ours)
        differing = sum(
            official.get(p, set()) != ours.get(p, set()) for p in people)
        return TargetComparison(
            tuple(heatmap_error), tuple(mask_mismatches), differing,
            len(people))


def sample_tag_sets(sample) -> TagSets:
    """{annotation id: {(joint, flat pixel index)}} of a packed sample:
    ``keypoint_indices`` has one row per instance, in the order of
    ``metainfo['id']``."""
    indices = sample.gt_instance_labels.keypoint_indices.numpy()
    ids = sample.metainfo['id']
    if len(ids) != len(indices):
        raise ValueError(f'{len(indices)} rows of keypoint_indices for '
                         f'{len(ids)} annotation ids')
    return {
        int(ann_id): {(int(k), int(indices[row, k, 0]))
                      for k in np.flatnonzero(indices[row, :, 1])}
        for row, ann_id in enumerate(ids)
    }


def train_dataset(cfg, data_root: Path, ann_file: Path, flip: bool,
                  affine: Optional[dict] = None,
                  codec: Optional[dict] = None):
    """A config's train dataset with RandomFlip always (or never) flipping.

    Args:
        cfg (Config): the config.
        data_root (Path): folder of the images.
        ann_file (Path): COCO-style annotations.
        flip (bool): flip every sample, or none.
        affine (dict, optional): overrides of the affine transform's config.
        codec (dict, optional): overrides of GenerateTarget's encoder.
    """
    from mmpose.registry import DATASETS
    pipeline = copy.deepcopy(cfg.train_pipeline)
    by_type = {t['type']: t for t in pipeline}
    by_type['RandomFlip']['prob'] = 1.0 if flip else 0.0
    by_type['HigherHRNetRandomAffine'].update(affine or {})
    by_type['GenerateTarget']['encoder'].update(codec or {})
    return DATASETS.build(
        dict(cfg.train_dataloader.dataset, data_root=str(data_root) + '/',
             ann_file=str(ann_file), data_prefix=dict(img=''),
             pipeline=pipeline))


def sample_with_draw(dataset, image_id: int, draw: AffineDraw,
                     image_shape: Tuple[int, int],
                     matrix: Optional[np.ndarray] = None):
    """The packed sample of one image with the affine's draw fixed.

    For ``sampling='official'`` the draw replaces the random one; with
    ``matrix``, that matrix replaces the one built from the draw (to rule
    out last-bit differences). For ``sampling='mmpose'`` the same crop is
    given to ``BottomupRandomAffine`` as its offset, scale and rotation.

    Args:
        dataset: from :func:`train_dataset`.
        image_id (int): COCO image id.
        draw (AffineDraw): scale factor, rotation and shift.
        image_shape (tuple): the image's (h, w).
        matrix (np.ndarray, optional): (2, 3) matrix to use instead.

    Returns:
        tuple: the ``PoseDataSample``, and the matrix built from the draw
        (None for ``sampling='mmpose'``).
    """
    index = next(i for i in range(len(dataset))
                 if dataset.get_data_info(i)['img_id'] == image_id)
    affine = next(t for t in dataset.pipeline.transforms if isinstance(
        t, higherhrnet_random_affine.HigherHRNetRandomAffine))
    build_matrix = higherhrnet_random_affine.official_warp_matrix
    built = []

    def record(*args, **kwargs):
        built.append(build_matrix(*args, **kwargs))
        return built[-1] if matrix is None else np.array(matrix)

    h, w = image_shape
    mmpose_params = (np.array(draw.shift) / [w, h],
                     np.array([draw.scale_factor]), draw.rotation,
                     np.zeros(2))
    with mock.patch.object(affine, '_draw_official', return_value=draw), \
            mock.patch.object(affine, '_get_transform_params',
                              return_value=mmpose_params), \
            mock.patch.object(higherhrnet_random_affine,
                              'official_warp_matrix', record):
        results = dataset[index]
    return results['data_samples'], built[0] if built else None


#: Pipelines compared with the official targets by
#: :func:`compare_config_with_official`: name -> (affine overrides, codec
#: overrides, use the stored matrix).
VARIANTS = {
    'config': (None, None, True),
    'config, our matrix': (None, None, False),
    "flip_about='input'": (None, dict(flip_about='input'), True),
    "sampling='mmpose'": (dict(sampling='mmpose'), None, False),
}


def compare_config_with_official(cfg, official: OfficialTrainTargets,
                                 coco_dir: Path, work_dir: Path,
                                 variants: Optional[List[str]] = None
                                 ) -> List[Tuple[str, str,
                                                 TargetComparison]]:
    """Every fixture entry through a config's train pipeline, per variant
    of :data:`VARIANTS`.

    Args:
        cfg (Config): a config whose targets match the fixture's settings
            (COCO, 512 input, 128 / 256 outputs).
        official (OfficialTrainTargets): the fixture.
        coco_dir (Path): folder of the COCO images and ``test_coco.json``.
        work_dir (Path): where to write the ``crowd`` case's annotations.
        variants (list, optional): names from :data:`VARIANTS` (all if None).

    Returns:
        list: (variant, entry, comparison) rows.
    """
    rows = []
    for variant in variants or list(VARIANTS):
        affine, codec, use_stored = VARIANTS[variant]
        for entry in official.entries:
            ann_file = official.annotations(
                entry, Path(coco_dir) / 'test_coco.json', work_dir)
            dataset = train_dataset(cfg, Path(coco_dir), ann_file,
                                    official.case(entry)['flip'], affine,
                                    codec)
            sample, _ = sample_with_draw(
                dataset, int(official[f'{entry}_image_id']),
                official.draw(entry),
                tuple(official[f'{entry}_image_size']),
                official[f'{entry}_mat_input'] if use_stored else None)
            rows.append((variant, entry, official.compare(entry, sample)))
    return rows
