"""A network wrapper that runs every image of a padded batch on its own."""
from typing import Callable, List, Sequence

import torch
from torch import Tensor


class PerImageNetwork:
    """Run ``network`` on each image of a padded batch separately, at the
    image's own size, and place its outputs where the batched network would
    have put them.

    A convolutional network's outputs near an image border depend on what
    lies beyond it, so a padded batch never gives exactly the outputs of
    single images. Wrapping the network with this isolates the rest of the
    test path: with it, a batch must give every image exactly the people
    that image gets on its own.

    An image is found as the non-zero part of its (normalised) input: the
    data preprocessor pads with exact zeros, which a normalised pixel never
    is; in the flipped view the image sits at the right.

    Args:
        network (callable): (1, 3, h, w) -> outputs (1, C_i, h_i, w_i).
    """

    def __init__(self, network: Callable[[Tensor], Sequence[Tensor]]):
        self.network = network
        self.calls = 0

    def __call__(self, inputs: Tensor) -> List[Tensor]:
        per_image = []
        for image in inputs:
            content = (image != 0).any(dim=0)  # (H, W)
            rows = torch.nonzero(content.any(dim=1))[:, 0]
            cols = torch.nonzero(content.any(dim=0))[:, 0]
            top, bottom = 0, int(rows.max()) + 1
            left, right = int(cols.min()), int(cols.max()) + 1
            outputs = self.network(image[None, :, top:bottom, left:right])
            self.calls += 1
            per_image.append((outputs, (bottom, left, right)))
        return [
            self._place(level, per_image, inputs.shape[-2:])
            for level in range(len(per_image[0][0]))
        ]

    @staticmethod
    def _place(level: int, per_image, padded) -> Tensor:
        """Output ``level`` of the batch: each image's own output at its
        place, zeros elsewhere."""
        outs = []
        for outputs, (bottom, left, right) in per_image:
            out = outputs[level]
            stride = bottom // out.shape[-2]
            full = out.new_zeros(out.shape[:2] +
                                 (padded[0] // stride, padded[1] // stride))
            full[..., :out.shape[-2],
                 left // stride:left // stride + out.shape[-1]] = out
            outs.append(full)
        return torch.cat(outs)
