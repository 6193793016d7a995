"""The decoders that ``tools/benchmark_decoder.py`` times, and where each
spends its time.

Every decoder takes the maps as the head hands them over, heatmaps
(1, K, H, W) and tags (1, L*K, H, W), and its time is split into stages by
wrapping the functions that do each one while it runs
(:class:`~.stage_timer.StageTimer`):

- ``layout``: bringing the tags into the decoder's own layout;
- ``nms``, ``topk``: the peaks of every heatmap;
- ``grouping``: candidates into people, with ``assignment`` (the Hungarian
  solver) inside it;
- ``adjust``: the quarter-pixel shift; ``refine``: filling missing joints.

Decoders: ``ours`` (:func:`~..codecs.ae_grouping.batch_group_keypoints`),
``baseline`` (an older ``ae_grouping.py`` given as a file, called the way
the codec called it: tags (K, H, W, L) as a permuted view, which it made
contiguous), ``mmpose`` (MMPose 1.x ``AssociativeEmbedding.batch_decode``)
and ``reference`` (the per-joint loop of
:mod:`~higherhrnet_plugin.testing.reference_ae_grouping`).
"""
import importlib.util
from pathlib import Path
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import numpy as np
from torch import Tensor

from ..codecs import ae_grouping, ae_maps
from ..testing import reference_ae_grouping
from ..testing.decoder_cases import tags_per_joint
from .stage_timer import Hooks

#: Stages, in the order they run; ``assignment`` is part of ``grouping``.
STAGES = ('layout', 'nms', 'topk', 'grouping', 'assignment', 'adjust',
          'refine')


class Decoder(NamedTuple):
    """A decoder ready to run on one case.

    Attributes:
        run (callable): decodes; returns (grouped (P, K, 3 + L), scores)
            where comparable with the official output, else None.
        hooks (Hooks): what to time as each stage.
    """
    run: Callable[[], Optional[Tuple[np.ndarray, np.ndarray]]]
    hooks: Hooks


def load_module_file(path: Path, name: str):
    """Import a Python file as a module (e.g. an older ``ae_grouping.py``
    taken from git history)."""
    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None:
        raise ValueError(f'{path}: not a Python file')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_decoders(heatmaps: Tensor, tags: Tensor,
                  cfg: ae_grouping.AEGroupingConfig,
                  baseline=None, names=('ours', 'baseline', 'mmpose',
                                        'reference')) -> Dict[str, Decoder]:
    """The decoders on one case, inputs prepared outside the timing.

    Args:
        heatmaps (Tensor): (1, K, H, W) float32.
        tags (Tensor): (1, L*K, H, W) float32, channel ``l * K + k``.
        cfg (AEGroupingConfig): Settings (MMPose's decoder gets the same).
        baseline (module, optional): an older ``ae_grouping`` module.
        names (Sequence[str]): which decoders to make.

    Returns:
        dict: name -> :class:`Decoder`.
    """
    num_joints = heatmaps.shape[1]
    decoders = {}
    if 'ours' in names:
        decoders['ours'] = Decoder(
            lambda: ae_grouping.batch_group_keypoints(heatmaps, tags,
                                                      cfg)[0],
            {
                'layout': [(ae_grouping, '_map_readers')],
                'nms': [(ae_maps, 'TileMaxima'), (ae_maps, 'peak_candidates')],
                'topk': [(ae_maps, 'topk_of_candidates')],
                'grouping': [(ae_grouping, '_match_by_tag')],
                'assignment': [(ae_grouping, 'min_cost_assignment')],
                'adjust': [(ae_grouping, '_adjust_in_place')],
                'refine': [(ae_grouping, '_refine_in_place')],
            })
    if 'baseline' in names and baseline is not None:
        # as the codec called it: a permuted view, made contiguous inside
        per_joint = tags[0].unflatten(0, (-1, num_joints)).permute(1, 2, 3, 0)
        decoders['baseline'] = Decoder(
            lambda: baseline.group_keypoints(heatmaps[0], per_joint, cfg),
            {
                'layout': [(baseline, '_prepare_maps')],
                'nms': [(baseline, '_suppress')],
                'topk': [(baseline, '_topk')],
                'grouping': [(baseline, '_match_by_tag')],
                'assignment': [(baseline, 'min_cost_assignment')],
                'adjust': [(baseline, '_adjust_in_place')],
                'refine': [(baseline, '_refine_in_place')],
            })
    if 'mmpose' in names:
        decoders['mmpose'] = _mmpose_decoder(heatmaps, tags, cfg)
    if 'reference' in names:
        decoders['reference'] = _reference_decoder(heatmaps, tags, cfg)
    return decoders


def _mmpose_decoder(heatmaps: Tensor, tags: Tensor,
                    cfg: ae_grouping.AEGroupingConfig) -> Decoder:
    """MMPose 1.x's ``AssociativeEmbedding.batch_decode`` with the same
    settings (it takes the head's layout)."""
    from mmpose.codecs import AssociativeEmbedding
    from mmpose.codecs import associative_embedding as module
    num_joints, height, width = heatmaps.shape[1:]
    codec = AssociativeEmbedding(
        input_size=(width, height), heatmap_size=(width, height),
        decode_keypoint_order=cfg.joint_order(num_joints),
        decode_nms_kernel=cfg.nms_kernel, decode_topk=cfg.topk,
        decode_keypoint_thr=cfg.detection_threshold,
        decode_tag_thr=cfg.tag_threshold,
        decode_max_instances=cfg.max_offered_groups, decode_center_shift=0.5)

    def run():
        codec.batch_decode(heatmaps, tags)

    return Decoder(run, {
        'nms': [(module, 'batch_heatmap_nms')],
        'topk': [(codec, '_get_batch_topk')],
        'grouping': [(codec, '_group_keypoints')],
        'assignment': [(module, '_py_max_match')],
        'adjust': [(module, 'refine_keypoints')],
        'refine': [(codec, '_fill_missing_keypoints')],
    })


def _reference_decoder(heatmaps: Tensor, tags: Tensor,
                       cfg: ae_grouping.AEGroupingConfig) -> Decoder:
    """The reference loop, after bringing the tags into its (K, H, W, L)
    layout (timed as ``layout``)."""
    module = reference_ae_grouping
    heatmaps_np, tags_np = heatmaps[0].numpy(), tags[0].numpy()
    holder = _LayoutHolder()

    def run():
        per_joint = holder.contiguous(tags_per_joint(tags_np,
                                                     heatmaps_np.shape[0]))
        return module.reference_group_keypoints(heatmaps_np, per_joint, cfg)

    hooks = {
        'layout': [(holder, 'contiguous')],
        'nms': [(module, '_suppress')],
        'topk': [(module, '_candidates')],
        'grouping': [(module, '_group')],
        'adjust': [(module, '_adjust')],
        'refine': [(module, '_refine')],
    }
    hooks['assignment'] = [(module, 'min_cost_assignment')]
    return Decoder(run, hooks)


class _LayoutHolder:
    """Holds the layout step of a decoder as a hookable method."""

    @staticmethod
    def contiguous(array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array)


def same_people(got: Tuple[np.ndarray, np.ndarray],
                expected: Tuple[np.ndarray, np.ndarray],
                exact: bool = False) -> bool:
    """Same people, in any order (or bit for bit, in order, if ``exact``):
    keypoints within 1e-3 px, values, tags and scores within 1e-5."""
    from scipy.optimize import linear_sum_assignment
    grouped, scores = got
    want, want_scores = expected
    if grouped.shape != want.shape or scores.shape != want_scores.shape:
        return False
    if exact:
        return bool(np.array_equal(grouped, want)
                    and np.array_equal(scores, want_scores))
    cost = np.abs(want[:, None] - grouped[None]).sum(axis=(2, 3))
    _, order = linear_sum_assignment(cost)
    grouped, scores = grouped[order], scores[order]
    return bool(
        np.allclose(grouped[..., :2], want[..., :2], rtol=0, atol=1e-3)
        and np.allclose(grouped[..., 2:], want[..., 2:], rtol=0, atol=1e-5)
        and np.allclose(scores, want_scores, rtol=0, atol=1e-5))
