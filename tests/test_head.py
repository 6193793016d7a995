"""HigherHRNetHead structure, parameter counts and configurability."""
import pytest
import torch

from higherhrnet_plugin.models.heads import HigherHRNetHead

from .conftest import CONFIGS, build_model


@pytest.mark.parametrize('config, expected', [
    ('coco/higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py', 28_645_331),
    ('coco/higherhrnet_hrnet-w48_8xb16-300e_coco-640x640.py', 63_827_139),
])
def test_parameter_counts_match_the_official_models(config, expected):
    model = build_model(CONFIGS / config)
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize('config, width, size', [
    ('coco/higherhrnet_hrnet-w32_8xb24-300e_coco-640x640.py', 32, 640),
    ('coco/higherhrnet_hrnet-w48_8xb16-300e_coco-512x512.py', 48, 512),
    ('crowdpose/higherhrnet_hrnet-w32_8xb24-300e_crowdpose-512x512.py', 32,
     512),
    ('crowdpose/higherhrnet_hrnet-w48_8xb16-300e_crowdpose-640x640.py', 48,
     640),
])
def test_every_config_builds_consistently(config, width, size):
    from mmengine.config import Config
    cfg = Config.fromfile(str(CONFIGS / config))
    K = cfg.model.head.num_keypoints
    assert cfg.model.head.in_channels == width
    assert cfg.codec.input_size == (size, size)
    assert cfg.codec.heatmap_sizes == [(size // 4, size // 4),
                                       (size // 2, size // 2)]
    assert cfg.model.head.decoder == cfg.codec
    assert cfg.train_dataloader.dataset.pipeline[3].encoder == cfg.codec
    assert K == (14 if 'crowdpose' in config else 17)
    assert 'http' not in cfg.pretty_text  # nothing downloads at run time


def test_outputs_have_tags_only_where_configured():
    head = HigherHRNetHead(in_channels=16, num_keypoints=5)
    outs = head(torch.randn(2, 16, 8, 8))
    assert [tuple(o.shape) for o in outs] == [(2, 10, 8, 8), (2, 5, 16, 16)]
    heatmaps, tags = head.split_heatmaps_and_tags(outs)
    assert tags[1] is None and tags[0].shape == (2, 5, 8, 8)
    assert torch.equal(heatmaps[0], outs[0][:, :5])


def test_deconv_modules_are_configurable():
    head = HigherHRNetHead(
        in_channels=6,
        num_keypoints=3,
        tag_dim=2,
        with_ae=(True, True, False),
        deconv_out_channels=(8, 4),
        deconv_kernel_sizes=(3, 2),
        num_basic_blocks=(1, 0),
        cat_output=(True, False),
        loss=dict(type='HigherHRNetLoss', heatmap_weights=(1.0, 1.0, 1.0)))
    outs = head((torch.randn(1, 6, 5, 5), ))
    assert [tuple(o.shape) for o in outs] == [(1, 9, 5, 5), (1, 9, 10, 10),
                                              (1, 3, 20, 20)]
    first, second = head.deconv_layers
    assert first[0][0].in_channels == 6 + 9  # concatenated output 0
    assert second[0][0].in_channels == 8  # no concatenation
    assert len(first) == 2 and len(second) == 1  # deconv + blocks


def test_shared_tag_map_is_repeated_per_keypoint():
    head = HigherHRNetHead(
        in_channels=4, num_keypoints=3, tag_per_keypoint=False)
    outs = head(torch.randn(1, 4, 4, 4))
    assert outs[0].shape[1] == 3 + 1
    _, tags = head.split_heatmaps_and_tags(outs)
    assert tags[0].shape[1] == 3
    assert torch.equal(tags[0][:, 0], tags[0][:, 2])


CODEC = dict(type='MultiResolutionAssociativeEmbedding', input_size=(64, 64),
             heatmap_sizes=[(16, 16), (32, 32)])


@pytest.mark.parametrize('kwargs, message', [
    (dict(deconv_kernel_sizes=5), 'kernel size'),
    (dict(with_ae=(True, )), 'with_ae'),
    (dict(cat_output=(True, False)), 'cat_output'),
    # the loss, the codec and the head must agree on the outputs
    (dict(loss=dict(type='HigherHRNetLoss', heatmap_weights=[1.0])),
     r'2 outputs .* its loss has 1 heatmap_weights'),
    (dict(decoder=dict(CODEC, heatmap_sizes=[(16, 16)])),
     r'2 outputs .* codec has 1 heatmap_sizes \[\[16, 16\]\]'),
    # tags on an output whose pixel indices the codec does not make
    (dict(decoder=CODEC, with_ae=(True, True)),
     r'tags on outputs \[0, 1\] .* \(tag_level=0\)'),
    (dict(decoder=dict(CODEC, tag_level=1)),
     r'tags on outputs \[0\] .* output 1 only'),
    (dict(decoder=dict(CODEC, decode_keypoint_order=[0, 1])),
     'num_keypoints is 3 but .* lists 2'),
])
def test_bad_settings_are_reported(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HigherHRNetHead(in_channels=4, num_keypoints=3, **kwargs)


def test_consistent_settings_build():
    head = HigherHRNetHead(in_channels=4, num_keypoints=3,
                           with_ae=(False, True),
                           decoder=dict(CODEC, tag_level=1))
    assert head.layout.with_ae == (False, True)


def test_official_initialisation():
    head = HigherHRNetHead(in_channels=32, num_keypoints=17)
    head.init_weights()
    weight = head.deconv_layers[0][0][0].weight
    assert 0.0005 < weight.std().item() < 0.002
    assert head.final_layers[0].bias.abs().max().item() == 0
    assert head.deconv_layers[0][0][1].weight.eq(1).all()
