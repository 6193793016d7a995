"""HigherHRNet head: heatmaps and associative-embedding tags at several
resolutions, produced by a final layer and a chain of deconvolution modules.

The module names (``final_layers``, ``deconv_layers``) and their nesting follow
the official implementation, so official weights load after a prefix change.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from mmpose.models.backbones.resnet import BasicBlock
from mmpose.models.heads.base_head import BaseHead
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.utils.typing import (ConfigType, Features, OptConfigType,
                                 OptSampleList, Predictions)
from ..postprocess import OutputLayout, TestOutputs, predict_people

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
        self.layout = OutputLayout(num_keypoints, tag_dim, tag_per_keypoint,
                                   tuple(with_ae))
        self.cat_output = _per_module(cat_output, num_deconvs, 'cat_output')

        out_channels = [
            self.layout.output_channels(i) for i in range(num_deconvs + 1)
        ]
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
        self._check_contracts()

    def _check_contracts(self) -> None:
        """Fail at build time, naming both sides, where the head, its codec
        and its loss disagree (they would fail, or silently train the wrong
        thing, much later)."""
        name = type(self).__name__
        num_outputs = self.layout.num_outputs
        with_ae = list(self.layout.with_ae)
        weights = getattr(self.loss_module, 'heatmap_weights', None)
        if weights is not None and len(weights) != num_outputs:
            raise ValueError(
                f'{name} has {num_outputs} outputs (with_ae={with_ae}) but '
                f'its loss has {len(weights)} heatmap_weights {list(weights)}'
                '; give one weight per output')
        if self.decoder is None:
            return
        sizes = getattr(self.decoder, 'heatmap_sizes', None)
        if sizes is not None and len(sizes) != num_outputs:
            raise ValueError(
                f'{name} has {num_outputs} outputs (with_ae={with_ae}) but '
                f'the decoder codec has {len(sizes)} heatmap_sizes '
                f'{[list(s) for s in sizes]}; give one size per output')
        tag_level = getattr(self.decoder, 'tag_level', None)
        if tag_level is not None and with_ae != [
                i == tag_level for i in range(num_outputs)
        ]:
            raise ValueError(
                f'{name} predicts tags on outputs '
                f'{[i for i, a in enumerate(with_ae) if a]} (with_ae='
                f'{with_ae}) but the codec makes tag targets for output '
                f'{tag_level} only (tag_level={tag_level}); set with_ae to '
                'True at tag_level and False elsewhere')
        # a keypoint order of the wrong length would fail only when decoding
        grouping = getattr(self.decoder, 'grouping', None)
        order = grouping.keypoint_order if grouping else None
        if order is not None and len(order) != self.num_keypoints:
            raise ValueError(
                f'{name}: num_keypoints is {self.num_keypoints} but the '
                f"decoder's decode_keypoint_order lists {len(order)} "
                'keypoints; make the codec match the head')

    def _check_num_keypoints(self, num_data_keypoints: int,
                             source: str) -> None:
        """Name both counts when the data and the head disagree."""
        if num_data_keypoints != self.num_keypoints:
            raise ValueError(
                f'{type(self).__name__} predicts {self.num_keypoints} '
                f'keypoints (model.head.num_keypoints) but the data has '
                f'{num_data_keypoints} keypoints ({source}); use a config '
                'whose num_keypoints matches the dataset')

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
        """Heatmaps (B, K, h, w) and tags (B, L*K, h, w) (None where an
        output has no tags) of every output; see
        :meth:`OutputLayout.split`."""
        return self.layout.split(outputs)

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
        """Run the head on every test view and group keypoints into people.

        ``MultiScaleBottomupPoseEstimator`` runs the whole test through
        :func:`predict_batch`; this is the path of MMPose's own
        ``BottomupPoseEstimator``, which extracts the features itself.

        Args:
            feats: as ``BottomupPoseEstimator.predict`` passes them: a tuple
                of features; ``[orig, flipped]`` with ``flip_test``; a list
                of those, one per scale (base scale first), with
                ``multiscale_test``.
            batch_data_samples (List[PoseDataSample]): with metainfo
                ``img_shape`` (the base-scale input size), ``flip_indices``
                for flip test, and, for batches of several images, the
                padded ``batch_input_shape`` (MMPose's data preprocessor
                sets it).
            test_cfg (dict): ``flip_test``, ``multiscale_test`` and the
                settings of :func:`predict_people`.

        Returns:
            List[InstanceData] (and List[PixelData] with
            ``output_heatmaps``): see :func:`predict_people`.
        """
        flip_test = test_cfg.get('flip_test', False)
        per_scale = feats if test_cfg.get('multiscale_test', False) else [
            feats
        ]
        outputs = [[self.forward(f) for f in (views if flip_test else [views])]
                   for views in per_scale]
        return predict_people(outputs,
                              _padded_shapes(outputs, batch_data_samples),
                              batch_data_samples, self.layout, self.decoder,
                              test_cfg)


def _padded_shapes(outputs: TestOutputs,
                   batch_data_samples) -> List[Tuple[int, int]]:
    """(h, w) of the network input per scale, from the base scale's padded
    ``batch_input_shape`` and the output sizes (the network's stride is the
    same at every scale)."""
    meta = batch_data_samples[0].metainfo
    base = meta.get('batch_input_shape')
    if base is None:
        if len(batch_data_samples) > 1:
            raise ValueError('a batch of several images needs '
                             '`batch_input_shape` in the metainfo (MMPose\'s '
                             'data preprocessors set it)')
        base = meta['img_shape']
    first = outputs[0][0][0].shape[-2:]
    stride = (base[0] / first[0], base[1] / first[1])
    return [(round(views[0][0].shape[-2] * stride[0]),
             round(views[0][0].shape[-1] * stride[1])) for views in outputs]
