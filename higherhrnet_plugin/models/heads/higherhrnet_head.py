"""HigherHRNet head: heatmaps and associative-embedding tags at several
resolutions, produced by a final layer and a chain of deconvolution modules.

The module names (``final_layers``, ``deconv_layers``) and their nesting follow
the official implementation, so official weights load after a prefix change.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.structures import InstanceData, PixelData
from torch import Tensor, nn

from mmpose.models.backbones.resnet import BasicBlock
from mmpose.models.heads.base_head import BaseHead
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.utils.typing import (ConfigType, Features, OptConfigType,
                                 OptSampleList, Predictions)
from ..utils.test_time_aggregation import aggregate_test_outputs

# ConvTranspose2d (padding, output_padding) that exactly doubles the size.
_DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


def _per_module(value, num_modules: int, name: str) -> list:
    """Broadcast a scalar setting to every deconv module, or check its length."""
    if not isinstance(value, (list, tuple)):
        return [value] * num_modules
    if len(value) != num_modules:
        raise ValueError(f'{name} has {len(value)} entries but there are '
                         f'{num_modules} deconv modules')
    return list(value)


class DeconvModule(nn.Sequential):
    """Upsample x2 with a transposed conv + BN + ReLU, then refine with
    ``num_basic_blocks`` BasicBlocks.

    Each BasicBlock is wrapped in its own ``nn.Sequential`` to keep the
    official checkpoint's key layout (``<i>.0.conv1.weight``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 num_basic_blocks: int):
        if kernel_size not in _DECONV_PADDING:
            raise ValueError(f'deconv kernel size must be one of '
                             f'{sorted(_DECONV_PADDING)}, got {kernel_size}')
        padding, output_padding = _DECONV_PADDING[kernel_size]
        upsample = nn.Sequential(
            nn.ConvTranspose2d(
                in_channels,
                out_channels,
                kernel_size=kernel_size,
                stride=2,
                padding=padding,
                output_padding=output_padding,
                bias=False),
            nn.BatchNorm2d(out_channels, momentum=0.1),
            nn.ReLU(inplace=True))
        blocks = [
            nn.Sequential(BasicBlock(out_channels, out_channels))
            for _ in range(num_basic_blocks)
        ]
        super().__init__(upsample, *blocks)


@MODELS.register_module()
class HigherHRNetHead(BaseHead):
    """The HigherHRNet head (Cheng et al., CVPR 2020).

    Output ``i`` (``i = 0 .. num_deconvs``) is a 1x1 (``final_kernel_size``)
    conv on the feature at ``2**i`` times the backbone resolution; output 0
    reads the backbone feature, output ``i > 0`` the ``i``-th deconv module.
    Deconv module ``i`` takes the previous feature, concatenated with the
    previous output when ``cat_output[i]``. Outputs with ``with_ae[i]`` also
    carry tag channels after the K heatmap channels.

    Note:
        - batch size: B; keypoints: K; tag dimension: L
        - backbone feature: (B, in_channels, H, W)
        - output i: (B, K + T_i, H * 2**i, W * 2**i), T_i = K*L (tag per
          keypoint) or L if ``with_ae[i]``, else 0

    Args:
        in_channels (int): Channels of the backbone feature (last in tuple).
        num_keypoints (int): K.
        tag_dim (int): L. Defaults to 1.
        tag_per_keypoint (bool): One tag map per keypoint (True) or one
            shared tag map. Defaults to True.
        with_ae (Sequence[bool]): Per output, whether it predicts tags.
            Defaults to (True, False).
        deconv_out_channels (Sequence[int]): Channels of each deconv module;
            its length is the number of deconv modules. Defaults to (32, ).
        deconv_kernel_sizes (int | Sequence[int]): 4, 3 or 2. Defaults to 4.
        num_basic_blocks (int | Sequence[int]): BasicBlocks after each deconv.
            Defaults to 4.
        cat_output (bool | Sequence[bool]): Whether each deconv module also
            takes the previous output as input. Defaults to True.
        final_kernel_size (int): Kernel of the final convs (1 or 3).
        loss (dict): Config of the multi-resolution loss.
        decoder (dict, optional): Config of the codec used to decode.
        init_cfg (dict | list, optional): Defaults to the official init:
            conv weights N(0, 0.001), bias 0, BN weight 1.
    """

    def __init__(self,
                 in_channels: int,
                 num_keypoints: int,
                 tag_dim: int = 1,
                 tag_per_keypoint: bool = True,
                 with_ae: Sequence[bool] = (True, False),
                 deconv_out_channels: Sequence[int] = (32, ),
                 deconv_kernel_sizes: Union[int, Sequence[int]] = 4,
                 num_basic_blocks: Union[int, Sequence[int]] = 4,
                 cat_output: Union[bool, Sequence[bool]] = True,
                 final_kernel_size: int = 1,
                 loss: ConfigType = dict(type='HigherHRNetLoss'),
                 decoder: OptConfigType = None,
                 init_cfg: OptConfigType = None):
        if init_cfg is None:
            init_cfg = [
                dict(
                    type='Normal',
                    layer=['Conv2d', 'ConvTranspose2d'],
                    std=0.001,
                    bias=0),
                dict(type='Constant', layer='BatchNorm2d', val=1, bias=0)
            ]
        super().__init__(init_cfg)
        num_deconvs = len(deconv_out_channels)
        if len(with_ae) != num_deconvs + 1:
            raise ValueError(f'with_ae needs one entry per output '
                             f'({num_deconvs + 1}), got {list(with_ae)}')
        self.in_channels = in_channels
        self.num_keypoints = num_keypoints
        self.tag_dim = tag_dim
        self.tag_per_keypoint = tag_per_keypoint
        self.with_ae = list(with_ae)
        self.cat_output = _per_module(cat_output, num_deconvs, 'cat_output')

        out_channels = [self._output_channels(ae) for ae in self.with_ae]
        feat_channels = [in_channels] + list(deconv_out_channels)
        self.final_layers = nn.ModuleList(
            nn.Conv2d(
                feat_channels[i],
                out_channels[i],
                kernel_size=final_kernel_size,
                padding=final_kernel_size // 2)
            for i in range(num_deconvs + 1))
        kernels = _per_module(deconv_kernel_sizes, num_deconvs,
                              'deconv_kernel_sizes')
        blocks = _per_module(num_basic_blocks, num_deconvs,
                             'num_basic_blocks')
        self.deconv_layers = nn.ModuleList(
            DeconvModule(
                feat_channels[i] +
                (out_channels[i] if self.cat_output[i] else 0),
                feat_channels[i + 1], kernels[i], blocks[i])
            for i in range(num_deconvs))

        self.loss_module = MODELS.build(loss)
        self.decoder = KEYPOINT_CODECS.build(decoder) if decoder else None
        # a keypoint order of the wrong length would fail only when decoding
        grouping = getattr(self.decoder, 'grouping', None)
        order = grouping.keypoint_order if grouping else None
        if order is not None and len(order) != num_keypoints:
            raise ValueError(
                f'{type(self).__name__}: num_keypoints is {num_keypoints} '
                f'but the decoder\'s decode_keypoint_order lists '
                f'{len(order)} keypoints; make the codec match the head '
                '(e.g. decode_keypoint_order=None for 14-keypoint '
                'CrowdPose)')

    def _check_num_keypoints(self, num_data_keypoints: int,
                             source: str) -> None:
        """Name both counts when the data and the head disagree."""
        if num_data_keypoints != self.num_keypoints:
            raise ValueError(
                f'{type(self).__name__} predicts {self.num_keypoints} '
                f'keypoints (model.head.num_keypoints) but the data has '
                f'{num_data_keypoints} keypoints ({source}); use a config '
                'whose num_keypoints matches the dataset')

    def _output_channels(self, with_ae: bool) -> int:
        if not with_ae:
            return self.num_keypoints
        tags = self.num_keypoints * self.tag_dim if self.tag_per_keypoint \
            else self.tag_dim
        return self.num_keypoints + tags

    def forward(self, feats: Union[Tensor, Tuple[Tensor]]) -> List[Tensor]:
        """Run the head.

        Args:
            feats (Tensor | Tuple[Tensor]): backbone features; the last one,
                (B, in_channels, H, W), is used.

        Returns:
            List[Tensor]: one output per resolution, output i in shape
            (B, K + T_i, H * 2**i, W * 2**i).
        """
        x = feats[-1] if isinstance(feats, (tuple, list)) else feats
        outputs = [self.final_layers[0](x)]
        for i, deconv in enumerate(self.deconv_layers):
            if self.cat_output[i]:
                x = torch.cat((x, outputs[-1]), dim=1)
            x = deconv(x)
            outputs.append(self.final_layers[i + 1](x))
        return outputs

    def split_heatmaps_and_tags(
            self, outputs: List[Tensor]
    ) -> Tuple[List[Tensor], List[Optional[Tensor]]]:
        """Split each output into heatmaps (B, K, h, w) and tags
        (B, K*L, h, w), the latter ``None`` where the output has no tags.

        With a shared tag map (``tag_per_keypoint=False``) the L channels are
        repeated for every keypoint so tags are always (B, K*L, h, w), laid
        out as channel ``l * K + k``.
        """
        K = self.num_keypoints
        heatmaps, tags = [], []
        for output, with_ae in zip(outputs, self.with_ae):
            heatmaps.append(output[:, :K])
            tag = output[:, K:] if with_ae else None
            if tag is not None and not self.tag_per_keypoint:
                tag = tag.repeat_interleave(K, dim=1)
            tags.append(tag)
        return heatmaps, tags

    def loss(self,
             feats: Tuple[Tensor],
             batch_data_samples: OptSampleList,
             train_cfg: ConfigType = {}) -> dict:
        """Compute the heatmap loss at every resolution and the AE loss.

        The data samples carry (from ``MultiResolutionAssociativeEmbedding``):
        ``gt_fields``: per-level ``heatmaps`` (K, h_i, w_i) and
        ``heatmap_mask`` (h_i, w_i); ``gt_instance_labels.keypoint_indices``
        (N, K, 2) at the tag resolution (N may differ between images).
        """
        heatmaps, tags = self.split_heatmaps_and_tags(self.forward(feats))
        num_levels = len(heatmaps)
        gt_heatmaps, gt_masks = [], []
        for level in range(num_levels):
            fields = [d.gt_fields[level] for d in batch_data_samples]
            gt_heatmaps.append(torch.stack([f.heatmaps for f in fields]))
            gt_masks.append(torch.stack([f.heatmap_mask for f in fields]))
        self._check_num_keypoints(gt_heatmaps[0].shape[1],
                                  'channels of the target heatmaps')
        keypoint_indices = [
            d.gt_instance_labels.keypoint_indices for d in batch_data_samples
        ]
        return self.loss_module(heatmaps, tags, gt_heatmaps, gt_masks,
                                keypoint_indices)

    def predict(self,
                feats: Features,
                batch_data_samples: OptSampleList,
                test_cfg: ConfigType = {}) -> Predictions:
        """Aggregate the outputs over resolutions, flip and scales, then
        group keypoints into people.

        Args:
            feats: as ``BottomupPoseEstimator.predict`` passes them: a tuple
                of features; ``[orig, flipped]`` with ``flip_test``; a list
                of those, one per scale (base scale first), with
                ``multiscale_test``.
            batch_data_samples (List[PoseDataSample]): with metainfo
                ``img_shape`` (the base-scale input size) and, for flip test,
                ``flip_indices``.
            test_cfg (dict): ``flip_test``, ``multiscale_test``,
                ``align_corners`` (False), ``output_heatmaps`` (False).

        Returns:
            List[InstanceData] (and List[PixelData] with heatmaps (K, H, W)
            and tags (K*L', H, W) if ``output_heatmaps``): keypoints
            (N, K, 2) in base input pixels, keypoint_scores (N, K),
            bbox_scores (N, ).
        """
        if self.decoder is None:
            raise RuntimeError(f'{type(self).__name__} needs a `decoder` '
                               'config to predict')
        flip_indices = batch_data_samples[0].metainfo.get('flip_indices')
        if flip_indices is not None:
            self._check_num_keypoints(len(flip_indices),
                                      "flip_indices of the dataset's metainfo")
        flip_test = test_cfg.get('flip_test', False)
        per_scale = feats if test_cfg.get('multiscale_test', False) else [
            feats
        ]
        per_scale = [list(f) if flip_test else [f] for f in per_scale]
        heatmaps, tags = aggregate_test_outputs(
            [[self.split_heatmaps_and_tags(self.forward(f)) for f in views]
             for views in per_scale],
            base_size=batch_data_samples[0].metainfo['img_shape'],
            flip_indices=batch_data_samples[0].metainfo.get('flip_indices'),
            align_corners=test_cfg.get('align_corners', False))

        preds = []
        K = self.num_keypoints
        for hm, tag, data_sample in zip(heatmaps, tags, batch_data_samples):
            if data_sample.metainfo.get('load_error'):
                # the image could not be loaded (see LoadImageOrReport):
                # no people rather than guesses on a blank image
                keypoints = np.zeros((0, K, 2), dtype=np.float32)
                scores = np.zeros((0, K), dtype=np.float32)
                instance_scores = np.zeros((0, ), dtype=np.float32)
            else:
                keypoints, scores, instance_scores = self.decoder.decode(
                    hm, tag)
            preds.append(
                InstanceData(
                    keypoints=keypoints,
                    keypoint_scores=scores,
                    bbox_scores=instance_scores))
        if test_cfg.get('output_heatmaps', False):
            fields = [
                PixelData(heatmaps=hm, tags=tag.permute(3, 0, 1, 2).flatten(
                    0, 1)) for hm, tag in zip(heatmaps, tags)
            ]
            return preds, fields
        return preds
