"""Perfect network outputs drawn from annotations.

They stand in for a trained HigherHRNet where none is available (no
weights can be downloaded here): the oracle test feeds them through the
whole test path and expects near-perfect AP, and the overhead benchmark
times the post-processing on maps that look like a trained model's.
"""
from typing import List, Sequence, Tuple

import numpy as np
import torch

from ..codecs.multi_resolution_ae import gaussian_heatmaps

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


def _tag_maps(keypoints: np.ndarray, visible: np.ndarray,
              size: Tuple[int, int]) -> np.ndarray:
    """(K, h, w): person n's tag (n + 1) * TAG_SPACING around each of its
    keypoints, 0 elsewhere."""
    w, h = size
    tags = np.zeros((keypoints.shape[1], h, w), np.float32)
    for n, k in zip(*np.nonzero(visible > 0)):
        x, y = keypoints[n, k].astype(int)
        if 0 <= x < w and 0 <= y < h:
            tags[k, max(0, y - TAG_RADIUS):y + TAG_RADIUS + 1,
                 max(0, x - TAG_RADIUS):x + TAG_RADIUS + 1] = \
                (n + 1) * TAG_SPACING
    return tags


class PerfectOutputs:
    """Stands in for backbone + head (``head.forward``) of a batch of one:
    given the network input it returns the outputs a perfect HigherHRNet
    would give, drawn from the sample's ``gt_instances``.

    Args:
        with_ae (Sequence[bool]): the head's ``layout.with_ae``.
        sigma (float): Gaussian sigma in output pixels.
    """

    def __init__(self, with_ae: Sequence[bool], sigma: float = 2.0):
        self.with_ae = tuple(with_ae)
        self.sigma = sigma
        self.inputs = {}  # input (h, w) -> unflipped input tensor
        self.sample = None

    def set_batch(self, inputs, samples) -> None:
        """The preprocessed batch (one image) the next calls belong to."""
        if len(samples) != 1:
            raise ValueError('PerfectOutputs draws batches of one image')
        inputs = inputs if isinstance(inputs, list) else [inputs]
        self.inputs = {tuple(x.shape[-2:]): x for x in inputs}
        self.sample = samples[0]

    def __call__(self, feats) -> List[torch.Tensor]:
        x = feats[-1] if isinstance(feats, (tuple, list)) else feats
        h, w = x.shape[-2:]
        flipped = not torch.equal(x, self.inputs[(h, w)])
        gt = self.sample.gt_instances
        return [
            torch.from_numpy(out[None]) for out in perfect_outputs(
                gt.keypoints, gt.keypoints_visible, self.sample.metainfo,
                (w, h), flipped, self.with_ae, self.sigma)
        ]
