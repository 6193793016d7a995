"""The post-network path of HigherHRNet, shared by every way of running it.

The network (backbone + head, or an exported ONNX graph) turns each test
*view* (an input scale, flipped or not) into one output per resolution. This
module turns those outputs into people:

1. :class:`OutputLayout` splits an output into heatmaps and tags;
2. :func:`run_test_views` runs a network on every view of a batch;
3. :func:`aggregate_views` brings all resolutions to the highest one, undoes
   the flip, projects every scale onto the base input and averages;
4. :func:`predict_people` crops each image of a padded batch to its own
   input, aggregates, decodes with the codec and packs ``InstanceData``;
5. :func:`input_to_image` / :func:`heatmaps_to_image` map keypoints and
   heatmaps from base-input pixels back to the original image.

:class:`~higherhrnet_plugin.models.HigherHRNetHead`, the pose estimator, the
ONNX Runtime backend and the demo all call these functions; nothing else
post-processes network outputs.

Tag layout, from the head to the decoder: (B, L*K, H, W) with channel
``l * K + k`` for keypoint k and tag dimension l (the head's and MMPose's
layout). Views are concatenated along L: with flip test the tag vector of a
pixel is ``[tags of the original view, tags of the flipped view]``.

Shapes: B images, K keypoints, L tag dimensions, h_i x w_i output i,
H x W the base-scale network input.
"""
import inspect
from dataclasses import dataclass
from typing import (Callable, Dict, List, Optional, Sequence, Tuple, Union)

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

#: Outputs of one view: one tensor (B, C_i, h_i, w_i) per head resolution.
ViewOutputs = List[Tensor]
#: ``outputs[scale][view]``: views are [original] or [original, flipped],
#: scales start with the base scale.
TestOutputs = List[List[ViewOutputs]]
Network = Callable[[Tensor], Sequence[Tensor]]


@dataclass(frozen=True)
class OutputLayout:
    """How the head's outputs are laid out (see :class:`HigherHRNetHead`).

    Output ``i`` holds K heatmap channels, followed, where ``with_ae[i]``,
    by the tag channels: K*L with a tag map per keypoint (channel
    ``K + l * K + k``), or L shared by all keypoints.

    Args:
        num_keypoints (int): K.
        tag_dim (int): L.
        tag_per_keypoint (bool): One tag map per keypoint, or shared.
        with_ae (Sequence[bool]): Per output, whether it carries tags.
    """
    num_keypoints: int
    tag_dim: int = 1
    tag_per_keypoint: bool = True
    with_ae: Tuple[bool, ...] = (True, False)

    def __post_init__(self):
        object.__setattr__(self, 'with_ae', tuple(bool(a) for a in
                                                  self.with_ae))

    @classmethod
    def of_head(cls, head_type: type, head_cfg: dict) -> 'OutputLayout':
        """The layout a head config describes, with the head class's
        defaults for what the config leaves out (no module is built)."""
        params = inspect.signature(head_type.__init__).parameters
        value = {
            name: head_cfg.get(name, params[name].default)
            for name in ('num_keypoints', 'tag_dim', 'tag_per_keypoint',
                         'with_ae')
        }
        return cls(**value)

    @property
    def num_outputs(self) -> int:
        return len(self.with_ae)

    def output_channels(self, level: int) -> int:
        """Channels of output ``level``."""
        if not self.with_ae[level]:
            return self.num_keypoints
        tags = self.tag_dim * (self.num_keypoints
                               if self.tag_per_keypoint else 1)
        return self.num_keypoints + tags

    def split(self, outputs: Sequence[Tensor]
              ) -> Tuple[List[Tensor], List[Optional[Tensor]]]:
        """Split outputs into heatmaps and tags.

        Args:
            outputs (Sequence[Tensor]): output i (B, C_i, h_i, w_i).

        Returns:
            tuple: heatmaps, per output (B, K, h_i, w_i); tags, per output
            (B, L*K, h_i, w_i), or None where the output has no tags. A
            shared tag map is repeated for every keypoint, so tags always
            have the per-keypoint layout.
        """
        if len(outputs) != self.num_outputs:
            raise ValueError(f'{len(outputs)} network outputs, but the head '
                             f'has {self.num_outputs} (with_ae='
                             f'{list(self.with_ae)})')
        K = self.num_keypoints
        heatmaps, tags = [], []
        for output, with_ae in zip(outputs, self.with_ae):
            heatmaps.append(output[:, :K])
            tag = output[:, K:] if with_ae else None
            if tag is not None and not self.tag_per_keypoint:
                tag = tag.repeat_interleave(K, dim=1)
            tags.append(tag)
        return heatmaps, tags


# --------------------------------------------------------------------------
# running the views
# --------------------------------------------------------------------------


def run_test_views(network: Network,
                   inputs: Union[Tensor, Sequence[Tensor]],
                   flip_test: bool,
                   views_in_one_batch: bool = False) -> TestOutputs:
    """Run ``network`` on every test view of a batch.

    Args:
        network (callable): (B, 3, H, W) input -> outputs (B, C_i, h_i, w_i).
        inputs (Tensor | Sequence[Tensor]): the normalised batch
            (B, 3, H, W), or one per test scale (base scale first).
        flip_test (bool): also run the horizontally flipped input.
        views_in_one_batch (bool): run the original and the flipped input
            as one batch of 2B (one call instead of two).

    Returns:
        TestOutputs: ``outputs[scale][view][level]``.
    """
    per_scale = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    results = []
    for x in per_scale:
        if not flip_test:
            results.append([list(network(x))])
        elif views_in_one_batch:
            both = network(torch.cat([x, x.flip(-1)]))
            B = x.shape[0]
            results.append([[o[:B] for o in both], [o[B:] for o in both]])
        else:
            results.append([list(network(x)), list(network(x.flip(-1)))])
    return results


# --------------------------------------------------------------------------
# aggregation
# --------------------------------------------------------------------------


def _resize(x: Tensor, size: Sequence[int], align_corners: bool) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(
        x, size=tuple(size), mode='bilinear', align_corners=align_corners)


def mean_of(tensors: Sequence[Tensor]) -> Tensor:
    """``torch.stack(tensors).mean(dim=0)``, bit for bit, without the
    stacked copy where it is not needed: one tensor is its own mean, and the
    mean of two is their sum halved (one rounded addition, an exact
    halving), as PyTorch computes it."""
    if len(tensors) == 1:
        return tensors[0]
    if len(tensors) == 2:
        return torch.add(tensors[0], tensors[1]).mul_(0.5)
    return torch.stack(list(tensors)).mean(dim=0)


def merge_resolutions(heatmaps: List[Tensor], tags: List[Optional[Tensor]],
                      align_corners: bool = False) -> Tuple[Tensor, Tensor]:
    """Bring all outputs of one view to the highest output resolution.

    Args:
        heatmaps (List[Tensor]): per output (B, K, h_i, w_i).
        tags (List[Tensor | None]): per output (B, L*K, h_i, w_i) or None.
        align_corners (bool): of the bilinear resizes.

    Returns:
        tuple: heatmaps (B, K, h, w), the mean over outputs; tags
        (B, L*K, h, w) of the output that has them.
    """
    size = heatmaps[-1].shape[-2:]
    mean_heatmap = mean_of([_resize(h, size, align_corners) for h in heatmaps])
    tag_maps = [_resize(t, size, align_corners) for t in tags if t is not None]
    if len(tag_maps) != 1:
        raise ValueError(f'exactly one output must predict tags, '
                         f'{len(tag_maps)} do')
    return mean_heatmap, tag_maps[0]


def unflip(heatmaps: Tensor, tags: Tensor,
           flip_indices: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """Undo a horizontal input flip: mirror the maps back and swap left and
    right keypoint channels of heatmaps (B, K, h, w) and tags
    (B, L*K, h, w)."""
    K = heatmaps.shape[1]
    heatmaps = heatmaps.flip(-1)[:, flip_indices]
    tags = tags.flip(-1).unflatten(1, (-1, K))[:, :, flip_indices]
    return heatmaps, tags.flatten(1, 2)


def aggregate_views(outputs: TestOutputs,
                    layout: OutputLayout,
                    base_size: Sequence[int],
                    flip_indices: Optional[Sequence[int]] = None,
                    align_corners: bool = False) -> Tuple[Tensor, Tensor]:
    """Aggregate all test outputs of images with the same input sizes into
    the maps the decoder groups.

    Per view the outputs are merged (:func:`merge_resolutions`) and the
    flipped view is mirrored back (:func:`unflip`); heatmaps are the plain
    mean of the views (the official code counts the original view twice; we
    do not) and the views' tags are concatenated. Every scale is then
    resized to the base-scale input size; heatmaps are averaged over scales,
    tags come from the base scale.

    Args:
        outputs (TestOutputs): ``outputs[scale][view][level]``, each
            (B, C_i, h_i, w_i) and covering exactly the images' inputs (see
            :func:`crop_to_inputs`).
        layout (OutputLayout): the head's output layout.
        base_size (Sequence[int]): (H, W) of the base-scale input.
        flip_indices (Sequence[int], optional): keypoint flip permutation,
            needed with a flipped view.
        align_corners (bool): of the bilinear resizes.

    Returns:
        tuple: heatmaps (B, K, H, W); tags (B, L'*K, H, W) with L' = L times
        the number of views.
    """
    base_size = tuple(int(s) for s in base_size[:2])
    heatmaps, tags = [], None
    for scale_index, views in enumerate(outputs):
        merged = [
            merge_resolutions(*layout.split(v), align_corners) for v in views
        ]
        if len(merged) == 2:
            if flip_indices is None:
                raise ValueError('flip test needs `flip_indices` in the '
                                 'metainfo')
            merged[1] = unflip(*merged[1], flip_indices)
        scale_heatmaps = mean_of([m[0] for m in merged])
        heatmaps.append(_resize(scale_heatmaps, base_size, align_corners))
        if scale_index == 0:
            tags = _resize(torch.cat([m[1] for m in merged], dim=1),
                           base_size, align_corners)
    return mean_of(heatmaps), tags


# --------------------------------------------------------------------------
# padded batches
# --------------------------------------------------------------------------


def input_shapes(data_sample, num_scales: int) -> Tuple[Tuple[int, int], ...]:
    """(h, w) of one image's network input at every test scale, before the
    batch was padded to a common size.

    The base scale is the ``img_shape`` the test resize recorded; further
    scales are recorded by ``MultiScalePoseDataPreprocessor`` as
    ``scale_input_shapes``.
    """
    meta = data_sample.metainfo
    shapes = meta.get('scale_input_shapes')
    if shapes is None:
        if num_scales != 1:
            raise ValueError('multi-scale test needs `scale_input_shapes` in '
                             'the metainfo (set by '
                             'MultiScalePoseDataPreprocessor)')
        shapes = [meta['img_shape']]
    if len(shapes) != num_scales:
        raise ValueError(f'{num_scales} test scales but the metainfo records '
                         f'input shapes for {len(shapes)}')
    return tuple((int(s[0]), int(s[1])) for s in shapes)


def crop_to_inputs(outputs: TestOutputs, index: Sequence[int],
                   shapes: Sequence[Tuple[int, int]],
                   padded: Sequence[Tuple[int, int]]) -> TestOutputs:
    """The outputs of images ``index``, cut to their own input size.

    Images of a batch are padded at the bottom and right to a common size;
    cutting each output to the part that covers the image's own input
    (before any resize) makes the post-processing exactly that of the image
    alone. In the flipped view the image sits at the right of the flipped
    padded input.

    Args:
        outputs (TestOutputs): of the whole padded batch.
        index (Sequence[int]): the images to keep (same input sizes).
        shapes (Sequence[tuple]): their input (h, w) per scale.
        padded (Sequence[tuple]): the padded batch input (h, w) per scale.

    Returns:
        TestOutputs: ``len(index)`` images, not padded (views of
        ``outputs`` where ``index`` is the whole batch).
    """
    cropped = []
    for views, (h, w), (pad_h, pad_w) in zip(outputs, shapes, padded):
        scale_views = []
        for view_index, view in enumerate(views):
            levels = []
            for out in view:
                out_h, out_w = _output_size(out, (h, w), (pad_h, pad_w))
                if list(index) != list(range(out.shape[0])):
                    rows = torch.as_tensor(list(index), device=out.device)
                    out = out.index_select(0, rows)
                left = out.shape[-1] - out_w if view_index == 1 else 0
                levels.append(out[..., :out_h, left:left + out_w])
            scale_views.append(levels)
        cropped.append(scale_views)
    return cropped


def _output_size(output: Tensor, shape: Tuple[int, int],
                 padded: Tuple[int, int]) -> Tuple[int, int]:
    """The (h, w) of ``output`` that an input of ``shape`` covers when the
    network ran on ``padded``."""
    size = []
    for side, pad_side, out_side in zip(shape, padded, output.shape[-2:]):
        covered, rest = divmod(side * out_side, pad_side)
        if rest:
            raise ValueError(
                f'an input of {shape[0]}x{shape[1]} padded to '
                f'{padded[0]}x{padded[1]} does not cover whole pixels of a '
                f'{output.shape[-2]}x{output.shape[-1]} output; test inputs '
                'must be multiples of the network stride')
        size.append(covered)
    return tuple(size)


def _same_input_groups(data_samples, num_scales: int) -> Dict[tuple, list]:
    """Images with equal input shapes and flip indices, in batch order."""
    groups: Dict[tuple, list] = {}
    for i, sample in enumerate(data_samples):
        flip = sample.metainfo.get('flip_indices')
        key = (input_shapes(sample, num_scales),
               None if flip is None else tuple(flip))
        groups.setdefault(key, []).append(i)
    return groups


# --------------------------------------------------------------------------
# people
# --------------------------------------------------------------------------


def predict_people(outputs: TestOutputs,
                   padded_shapes: Sequence[Tuple[int, int]],
                   data_samples: Sequence,
                   layout: OutputLayout,
                   decoder,
                   test_cfg: Optional[dict] = None
                   ) -> Union[List[InstanceData], Tuple[List[InstanceData],
                                                        List[PixelData]]]:
    """Network outputs of a (padded) test batch -> people per image.

    Images with the same input shapes are aggregated and decoded together;
    every image's maps are first cut to its own input (see
    :func:`crop_to_inputs`), so the people of an image do not depend on the
    batch it came in.

    Args:
        outputs (TestOutputs): ``outputs[scale][view][level]`` of the batch.
        padded_shapes (Sequence[tuple]): (h, w) of the batch input per scale.
        data_samples (Sequence[PoseDataSample]): with ``img_shape``,
            ``flip_indices`` (flip test), ``scale_input_shapes``
            (multi-scale test), ``ori_shape`` and the input centre / scale
            (``output_heatmaps``).
        layout (OutputLayout): the head's output layout.
        decoder: the codec, with ``batch_decode(heatmaps, tags)``.
        test_cfg (dict, optional): ``align_corners`` (False), ``score_thr``
            (drop people scoring below it; 0), ``output_heatmaps`` (False).

    Returns:
        List[InstanceData] (and List[PixelData] with ``output_heatmaps``):
        keypoints (N, K, 2) in base-input pixels, keypoint_scores (N, K),
        bbox_scores (N, ); heatmaps (K, h, w) in original image pixels.
    """
    test_cfg = test_cfg or {}
    if decoder is None:
        raise RuntimeError('predicting people needs a decoder: set '
                           'model.head.decoder to the codec config')
    _check_flip_indices(data_samples, layout.num_keypoints)
    align_corners = test_cfg.get('align_corners', False)
    instances: List[Optional[InstanceData]] = [None] * len(data_samples)
    fields: List[Optional[PixelData]] = [None] * len(data_samples)
    for (shapes, flip), index in _same_input_groups(data_samples,
                                                    len(outputs)).items():
        own = crop_to_inputs(outputs, index, shapes, padded_shapes)
        heatmaps, tags = aggregate_views(own, layout, shapes[0], flip,
                                         align_corners)
        decoded = decoder.batch_decode(heatmaps, tags)
        for row, i in enumerate(index):
            instances[i] = _people(decoded[row], data_samples[i],
                                   test_cfg.get('score_thr', 0))
            if test_cfg.get('output_heatmaps', False):
                fields[i] = PixelData(heatmaps=heatmaps_to_image(
                    heatmaps[row], data_samples[i].metainfo))
    if test_cfg.get('output_heatmaps', False):
        return instances, fields
    return instances


def _check_flip_indices(data_samples, num_keypoints: int) -> None:
    """Name both counts when the data and the head disagree."""
    for sample in data_samples:
        flip = sample.metainfo.get('flip_indices')
        if flip is not None and len(flip) != num_keypoints:
            raise ValueError(
                f'the head predicts {num_keypoints} keypoints '
                f'(model.head.num_keypoints) but the data has {len(flip)} '
                "keypoints (flip_indices of the dataset's metainfo); use a "
                'config whose num_keypoints matches the dataset')


def predict_batch(network: Network,
                  inputs: Union[Tensor, Sequence[Tensor]],
                  data_samples: Sequence,
                  layout: OutputLayout,
                  decoder,
                  test_cfg: Optional[dict] = None,
                  views_in_one_batch: bool = False) -> list:
    """People in every image of a test batch, from its network inputs.

    :func:`run_test_views`, :func:`predict_people` and
    :func:`attach_predictions` in a row: what a pose estimator's ``predict``
    does, whatever runs the network.

    Args:
        network (callable): (B, 3, H, W) -> the head's outputs.
        inputs (Tensor | Sequence[Tensor]): (B, 3, H, W), or with
            ``test_cfg.multiscale_test`` one such tensor per scale.
        data_samples (Sequence[PoseDataSample]): the batch's samples.
        layout (OutputLayout): the head's output layout.
        decoder: the codec.
        test_cfg (dict, optional): ``flip_test``, ``multiscale_test`` and
            the settings of :func:`predict_people`.
        views_in_one_batch (bool): see :func:`run_test_views`.

    Returns:
        List[PoseDataSample]: ``data_samples`` with ``pred_instances`` in
        image pixels (and ``pred_fields`` with ``output_heatmaps``).
    """
    test_cfg = test_cfg or {}
    multiscale = test_cfg.get('multiscale_test', False)
    if multiscale != isinstance(inputs, (list, tuple)):
        raise ValueError(
            'model.test_cfg.multiscale_test and the aug_scales of the test '
            "pipeline's HigherHRNetResize must be set together")
    outputs = run_test_views(network, inputs,
                             test_cfg.get('flip_test', False),
                             views_in_one_batch)
    per_scale = inputs if multiscale else [inputs]
    preds = predict_people(outputs, [tuple(x.shape[-2:]) for x in per_scale],
                           data_samples, layout, decoder, test_cfg)
    instances, fields = preds if isinstance(preds, tuple) else (preds, None)
    return attach_predictions(instances, fields, data_samples)


def _people(decoded: Tuple[np.ndarray, np.ndarray, np.ndarray], data_sample,
            score_thr: float) -> InstanceData:
    """One image's decoded people as ``InstanceData``."""
    keypoints, keypoint_scores, scores = decoded
    keep = scores >= score_thr
    if data_sample.metainfo.get('load_error'):
        # the image could not be loaded (see LoadImageOrReport): no people
        # rather than guesses on a blank image
        keep = np.zeros_like(keep)
    return InstanceData(
        keypoints=keypoints[keep],
        keypoint_scores=keypoint_scores[keep],
        bbox_scores=scores[keep])


# --------------------------------------------------------------------------
# back to the image
# --------------------------------------------------------------------------


def input_to_image(points: np.ndarray, metainfo: dict) -> np.ndarray:
    """Map (..., 2) points from base-input pixels to original image pixels:
    the inverse of the test resize, which put the box of ``input_scale``
    around ``input_center`` onto the ``input_size`` input."""
    input_size = metainfo['input_size']
    input_scale = metainfo['input_scale']
    input_center = metainfo['input_center']
    return points / input_size * input_scale + input_center \
        - 0.5 * input_scale


def image_to_heatmap_matrix(metainfo: dict,
                            factor: Sequence[float] = (1.0, 1.0)
                            ) -> np.ndarray:
    """(2, 3) affine from pixels of the original image, resized by
    ``factor`` (x, y), to heatmap pixels of the base input.

    The inverse of :func:`input_to_image`, then -0.5 because heatmap pixel
    ``j`` holds input coordinate ``j + 0.5`` (the decoder's pixel-centre
    shift); a pixel ``j`` of the resized image covers image coordinate
    ``(j + 0.5) / factor - 0.5`` (bilinear resizing without aligned
    corners).
    """
    size = np.asarray(metainfo['input_size'], np.float64)
    scale = np.asarray(metainfo['input_scale'], np.float64)
    center = np.asarray(metainfo['input_center'], np.float64)
    factor = np.asarray(factor, np.float64)
    gain = size / scale / factor
    offset = (0.5 / factor - 0.5 + 0.5 * scale - center) * size / scale \
        - 0.5
    return np.array([[gain[0], 0, offset[0]], [0, gain[1], offset[1]]])


def heatmaps_to_image(heatmaps: Tensor, metainfo: dict) -> Tensor:
    """Warp aggregated heatmaps (K, H, W) of the base input onto the
    original image.

    The result covers the original image (``ori_shape``) exactly, at the
    resolution of the network input (the image scaled by
    ``input_size / input_scale``, never above the image's own), so a
    visualiser that resizes it to the image (as MMPose's does) overlays it
    where :func:`input_to_image` puts the keypoints, and a huge image does
    not get huge heatmaps.

    Returns:
        Tensor: (K, h, w) on the device of ``heatmaps``.
    """
    height, width = metainfo['ori_shape'][:2]
    shrink = min(1.0, float(np.min(np.asarray(metainfo['input_size']) /
                                   np.asarray(metainfo['input_scale']))))
    size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    matrix = image_to_heatmap_matrix(
        metainfo, (size[0] / width, size[1] / height))
    maps = heatmaps.detach().float().cpu().numpy()
    warped = np.stack([
        cv2.warpAffine(
            m, matrix, size,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0) for m in maps
    ])
    return torch.from_numpy(warped).to(heatmaps.device)


def attach_predictions(instances: List[InstanceData],
                       fields: Optional[List[PixelData]],
                       data_samples: Sequence) -> list:
    """Store each image's people (keypoints mapped from base-input to image
    pixels with :func:`input_to_image`) and fields in its data sample, as
    ``pred_instances`` / ``pred_fields``; ``keypoints_visible`` defaults to
    the keypoint scores, as in MMPose."""
    if len(instances) != len(data_samples):
        raise ValueError(f'{len(instances)} predictions for '
                         f'{len(data_samples)} samples')
    for i, (pred, sample) in enumerate(zip(instances, data_samples)):
        pred.keypoints = input_to_image(pred.keypoints, sample.metainfo)
        if 'keypoints_visible' not in pred:
            pred.keypoints_visible = pred.keypoint_scores
        sample.pred_instances = pred
        if fields is not None and fields[i] is not None:
            sample.pred_fields = fields[i]
    return list(data_samples)
