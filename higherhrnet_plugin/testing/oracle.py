"""Perfect network outputs drawn from annotations.

They stand in for a trained HigherHRNet where none is available (no
weights can be downloaded here): the oracle test feeds them through the
whole test path and expects near-perfect AP, and the overhead benchmark
times the post-processing on maps that look like a trained model's.
"""
from typing import Callable, List, Sequence, Tuple

import numpy as np
import torch

from ..codecs.multi_resolution_ae import gaussian_heatmaps
from ..models.postprocess import input_shapes

TAG_SPACING = 3.0  # tags of different people are this far apart
TAG_RADIUS = 4  # pixels of the 1/4 map around a keypoint that hold its tag


def perfect_outputs(keypoints: np.ndarray,
                    visible: np.ndarray,
                    metainfo: dict,
                    input_size: Tuple[int, int],
                    flipped: bool,
                    with_ae: Sequence[bool],
                    sigma: float = 2.0) -> List[np.ndarray]:
    """What a perfect HigherHRNet outputs for one view of one image.

    Args:
        keypoints (np.ndarray): (N, K, 2) annotated keypoints, image pixels.
        visible (np.ndarray): (N, K) visibility.
        metainfo (dict): the test resize's ``input_size``,
            ``input_center``, ``input_scale`` (base scale) and, for a
            flipped view, ``flip_indices``.
        input_size (tuple): (w, h) of this view's network input (any test
            scale).
        flipped (bool): the view is the horizontally flipped input.
        with_ae (Sequence[bool]): per output, whether it carries tags (tag
            maps per keypoint, tag dimension 1).
        sigma (float): Gaussian sigma in output pixels.

    Returns:
        List[np.ndarray]: output i (C_i, h / 4 * 2**i, w / 4 * 2**i).
    """
    keypoints = keypoints.astype(np.float64)
    visible = visible.astype(np.float32)
    # image pixels -> this input's pixels (base-scale affine, rescaled)
    base_w = metainfo['input_size'][0]
    keypoints = (keypoints - metainfo['input_center'] +
                 metainfo['input_scale'] / 2) * (
                     np.array(metainfo['input_size']) /
                     metainfo['input_scale'])
    keypoints *= input_size[0] / base_w
    if flipped:
        keypoints[..., 0] = input_size[0] - 1 - keypoints[..., 0]
        keypoints = keypoints[:, metainfo['flip_indices']]
        visible = visible[:, metainfo['flip_indices']]
    outputs = []
    for level, tags in enumerate(with_ae):
        size = (input_size[0] // 4 * 2**level, input_size[1] // 4 * 2**level)
        level_kpts = keypoints * size[0] / input_size[0]
        maps = [gaussian_heatmaps(level_kpts, visible, size, sigma)]
        if tags:
            maps.append(_tag_maps(level_kpts, visible, size))
        outputs.append(np.concatenate(maps))
    return outputs


def keypoint_patches(keypoints: np.ndarray, visible: np.ndarray,
                     size: Tuple[int, int], radius: int):
    """Where tag maps hold a person's tag: for each visible keypoint inside
    the map (person by person), ``(n, k, rows, cols)`` with the slices of
    the square of ``radius`` around it, cut by the map's edges.

    Args:
        keypoints (np.ndarray): (N, K, 2) in map pixels.
        visible (np.ndarray): (N, K).
        size (tuple): (w, h) of the map.
    """
    w, h = size
    for n, k in zip(*np.nonzero(visible > 0)):
        x, y = keypoints[n, k].astype(int)
        if 0 <= x < w and 0 <= y < h:
            yield (n, k, slice(max(0, y - radius), y + radius + 1),
                   slice(max(0, x - radius), x + radius + 1))


def _tag_maps(keypoints: np.ndarray, visible: np.ndarray,
              size: Tuple[int, int]) -> np.ndarray:
    """(K, h, w): person n's tag (n + 1) * TAG_SPACING around each of its
    keypoints, 0 elsewhere."""
    w, h = size
    tags = np.zeros((keypoints.shape[1], h, w), np.float32)
    for n, k, rows, cols in keypoint_patches(keypoints, visible, size,
                                             TAG_RADIUS):
        tags[k, rows, cols] = (n + 1) * TAG_SPACING
    return tags


class PerfectOutputs:
    """Stands in for the network (backbone + head) on a test batch: given
    the network input it returns the outputs a perfect HigherHRNet would
    give, drawn from the samples' ``gt_instances``.

    Batches may be padded (images of different sizes): each image's outputs
    are drawn at its own input size and placed where the network's would
    be, at the top left of the padded batch, or at the top right in the
    flipped view; padding gets zeros. Which view and scale a call is for is
    read off its input, compared with the batch given to :meth:`set_batch`.

    Args:
        with_ae (Sequence[bool]): the head's ``layout.with_ae``.
        sigma (float): Gaussian sigma in output pixels.
    """

    def __init__(self, with_ae: Sequence[bool], sigma: float = 2.0):
        self.with_ae = tuple(with_ae)
        self.sigma = sigma
        self.inputs = []  # the padded batch input of every test scale
        self.samples = []

    def set_batch(self, inputs, samples) -> None:
        """The preprocessed batch the next calls belong to: inputs
        (B, 3, H, W), or one per test scale, and the B data samples."""
        self.inputs = list(inputs) if isinstance(inputs, (list, tuple)) \
            else [inputs]
        self.samples = list(samples)

    def __call__(self, inputs) -> List[torch.Tensor]:
        """Outputs for ``inputs`` (one of the batch's views), one tensor
        (B, C_i, H / 4 * 2**i, W / 4 * 2**i) per head output; also takes
        the features tuple ``head.forward`` gets when ``extract_feat``
        passes the input through."""
        x = inputs[-1] if isinstance(inputs, (tuple, list)) else inputs
        scale, flipped = self._view_of(x)
        outputs = [[] for _ in self.with_ae]
        for sample in self.samples:
            h, w = input_shapes(sample, len(self.inputs))[scale]
            gt = sample.gt_instances
            own = perfect_outputs(gt.keypoints, gt.keypoints_visible,
                                  sample.metainfo, (w, h), flipped,
                                  self.with_ae, self.sigma)
            for level, out in enumerate(own):
                padded = np.zeros(out.shape[:1] + tuple(
                    side // 4 * 2**level for side in x.shape[-2:]),
                                  np.float32)
                left = padded.shape[-1] - out.shape[-1] if flipped else 0
                padded[:, :out.shape[1], left:left + out.shape[2]] = out
                outputs[level].append(padded)
        return [torch.from_numpy(np.stack(level)) for level in outputs]

    def _view_of(self, x: torch.Tensor) -> Tuple[int, bool]:
        """(test scale index, flipped) of a call's input."""
        for scale, batch_input in enumerate(self.inputs):
            if batch_input.shape == x.shape:
                if torch.equal(x, batch_input):
                    return scale, False
                if torch.equal(x, batch_input.flip(-1)):
                    return scale, True
        raise ValueError('PerfectOutputs was called with an input that is '
                         'not a view of the batch given to set_batch')


class PlantedNetwork:
    """Runs ``network`` on every call (its cost), then returns
    ``outputs(inputs)`` instead of its outputs.

    No trained weights can be had offline, and random weights give maps
    nothing like a trained model's, so benchmarks time the real network and
    post-process planted outputs (:class:`PerfectOutputs`, or precomputed
    views): the decoder then sees a trained model's kind of maps.

    Args:
        network (callable): (B, 3, H, W) -> the head's outputs.
        outputs (callable): (B, 3, H, W) -> the outputs to return.
    """

    def __init__(self, network: Callable[[torch.Tensor], Sequence],
                 outputs: Callable[[torch.Tensor], List[torch.Tensor]]):
        self.network = network
        self.outputs = outputs

    def __call__(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        self.network(inputs)
        return self.outputs(inputs)


def plant_perfect_outputs(model) -> None:
    """Make a ``MultiScaleBottomupPoseEstimator`` post-process the perfect
    outputs of its test batches' annotations (``gt_instances``), while still
    running its network on every view.

    ``model.predict`` and ``model.network`` are replaced on the instance.
    """
    oracle = PerfectOutputs(model.head.layout.with_ae)
    predict = model.predict

    def predict_planted(inputs, data_samples):
        oracle.set_batch(inputs, data_samples)
        return predict(inputs, data_samples)

    model.network = PlantedNetwork(model.network, oracle)
    model.predict = predict_planted
