"""Tests of higherhrnet_plugin.checkpoint_conversion and
tools/convert_checkpoint.py against the official reference fixtures.

The fixtures live in ``../shared/fixtures`` next to the repository (see its
README.md); without it the tests are skipped, and fail under CI=true.
"""
import json
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import higherhrnet_plugin  # noqa: F401  (registers the plugin modules)
from higherhrnet_plugin.testing import SHARED_ROOT, shared_path
from higherhrnet_plugin.checkpoint_conversion import (
    BACKBONE_ROOTS, HEAD_ROOTS, CheckpointConversionError,
    build_model_from_config, check_state_dict, convert_checkpoint,
    convert_state_dict, detect_layout, load_source_state_dict,
    save_converted_checkpoint)

REPO = Path(__file__).resolve().parents[1]
SHARED = SHARED_ROOT
FIXTURES = SHARED / 'fixtures'
CONFIGS = REPO / 'configs' / 'higherhrnet' / 'coco'
TINY_CONFIG = CONFIGS / 'higherhrnet_hrnet-tiny_1xb2-30e_coco-256x256.py'
W32_CONFIG = CONFIGS / 'higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py'
W48_CONFIG = CONFIGS / 'higherhrnet_hrnet-w48_8xb16-300e_coco-640x640.py'
CLI = REPO / 'tools' / 'convert_checkpoint.py'


def fixture_path(name: str) -> Path:
    return shared_path('fixtures', name)


@pytest.fixture(scope='module')
def tiny_ckpt() -> Path:
    return fixture_path('official_tiny_higherhrnet.pth')


@pytest.fixture(scope='module')
def official_tiny(tiny_ckpt) -> 'OrderedDict[str, torch.Tensor]':
    """The official tiny state dict, read directly with torch."""
    return torch.load(tiny_ckpt, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def tiny_model() -> nn.Module:
    """A tiny model only used to check against (never loaded into)."""
    return build_model_from_config(TINY_CONFIG)


@pytest.fixture(scope='module')
def converted_official(tiny_ckpt, tiny_model):
    return convert_checkpoint(tiny_ckpt, model=tiny_model).state_dict


def to_mmpose0x(official: dict) -> 'OrderedDict[str, torch.Tensor]':
    """Rename an official state dict the way MMPose 0.x names it."""
    renamed = OrderedDict()
    for key, value in official.items():
        root = key.split('.')[0]
        assert root in BACKBONE_ROOTS | HEAD_ROOTS, key
        prefix = 'keypoint_head.' if root in HEAD_ROOTS else 'backbone.'
        renamed[prefix + key] = value
    return renamed


def assert_same_state_dict(actual: dict, expected: dict):
    assert list(actual) == list(expected)
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


def assert_names(err: CheckpointConversionError, source, *fragments):
    message = str(err)
    assert str(source) in message, message
    for fragment in fragments:
        assert fragment in message, f'{fragment!r} not in {message!r}'


# ---------------------------------------------------------------- parity


def test_official_tiny_parity(tiny_ckpt, official_tiny):
    io = np.load(fixture_path('official_tiny_io.npz'))
    x = torch.from_numpy(io['input'])
    expected = [
        torch.from_numpy(io['output0']),
        torch.from_numpy(io['output1'])
    ]

    model = build_model_from_config(TINY_CONFIG)
    model.eval()
    with torch.no_grad():
        before = model.head.forward(model.extract_feat(x))
    # the freshly initialised model is far from the reference: the check
    # below can only pass through the loaded weights
    assert (before[1] - expected[1]).abs().max() > 1e-2

    result = convert_checkpoint(tiny_ckpt, model=model)
    assert result.layout == 'official'
    assert result.num_tensors == len(official_tiny)
    assert result.filled_keys == []
    model.load_state_dict(result.state_dict, strict=True)
    model.eval()
    with torch.no_grad():
        outputs = model.head.forward(model.extract_feat(x))

    assert len(outputs) == 2
    for out, ref in zip(outputs, expected):
        assert out.shape == ref.shape
        assert ref.abs().max() > 1e-2  # a meaningful reference
        err = (out - ref).abs().max().item()
        assert err < 1e-4, err


# ---------------------------------------------------------------- manifests


@pytest.mark.parametrize('manifest, config', [
    ('official_w32_state_dict_keys.json', W32_CONFIG),
    ('official_w48_state_dict_keys.json', W48_CONFIG),
])
def test_official_manifest_loads_strictly(manifest, config):
    entries = json.loads(fixture_path(manifest).read_text())
    # zeros of the listed shapes; expand() keeps W48 from allocating 250 MB
    state_dict = OrderedDict(
        (name,
         torch.zeros((),
                     dtype=torch.long if name.endswith('num_batches_tracked')
                     else torch.float32).expand(shape))
        for name, shape in entries)
    assert len(state_dict) == len(entries)

    assert detect_layout(state_dict) == 'official'
    converted = convert_state_dict(state_dict)
    assert len(converted) == len(state_dict)  # every key mapped, 1:1

    model = build_model_from_config(config)
    checked, filled = check_state_dict(converted, model)
    assert filled == []
    assert set(checked) == set(model.state_dict())
    model.load_state_dict(converted, strict=True)
    assert model.head.final_layers[0].weight.abs().sum() == 0
    assert model.backbone.conv1.weight.abs().sum() == 0


# --------------------------------------------------- layouts and nesting


def _mmpose0x_checkpoint(official):
    return {
        'state_dict': to_mmpose0x(official),
        'meta': {
            'mmpose_version': '0.29.0',
            'epoch': 300
        }
    }


def _module_prefixed(official):
    return OrderedDict(('module.' + k, v) for k, v in official.items())


@pytest.mark.parametrize(
    'layout, make',
    [
        ('official', lambda sd: sd),
        ('official', lambda sd: {
            'state_dict': _module_prefixed(sd)
        }),
        # the official training checkpoint: 'model' is a name, not weights
        ('official', lambda sd: {
            'epoch': 300,
            'model': 'pose_higher_hrnet',
            'perf': 0.67,
            'state_dict': _module_prefixed(sd)
        }),
        ('official', lambda sd: {
            'model': sd
        }),
        ('mmpose0x', lambda sd: to_mmpose0x(sd)),
        ('mmpose0x', _mmpose0x_checkpoint),
        ('mmpose0x', lambda sd: {
            'state_dict': _module_prefixed(to_mmpose0x(sd)),
            'meta': {}
        }),
    ],
    ids=[
        'plain', 'module-in-state_dict', 'official-training-ckpt', 'model-key',
        'mmpose0x-plain', 'mmpose0x-ckpt', 'mmpose0x-module'
    ])
def test_layouts_convert_to_the_same_result(layout, make, tmp_path,
                                            official_tiny, tiny_model,
                                            converted_official):
    src = tmp_path / 'src.pth'
    torch.save(make(official_tiny), src)
    result = convert_checkpoint(src, model=tiny_model)
    assert result.layout == layout
    assert_same_state_dict(result.state_dict, converted_official)


def test_mmpose1x_roundtrip_and_saved_file(tmp_path, tiny_ckpt, tiny_model,
                                           converted_official):
    dst = tmp_path / 'sub' / 'converted.pth'
    result = convert_checkpoint(tiny_ckpt, config=TINY_CONFIG)
    save_converted_checkpoint(result, dst)

    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(saved) == {'state_dict', 'meta'}
    assert saved['meta']['source_layout'] == 'official'
    assert saved['meta']['converted_from'] == str(tiny_ckpt)
    assert saved['meta']['num_tensors'] == len(converted_official)
    assert_same_state_dict(saved['state_dict'], converted_official)

    # a converted file is in the MMPose 1.x layout and converts to itself
    again = convert_checkpoint(dst, model=tiny_model)
    assert again.layout == 'mmpose1x'
    assert_same_state_dict(again.state_dict, converted_official)

    # MMEngine (as used by `mim test` and init_model) loads it strictly
    from mmengine.runner import load_checkpoint
    model = build_model_from_config(TINY_CONFIG)
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    assert torch.equal(model.head.final_layers[1].weight,
                       converted_official['head.final_layers.1.weight'])

    with pytest.raises(CheckpointConversionError, match='overwrite'):
        save_converted_checkpoint(again, dst)


def test_missing_num_batches_tracked_is_filled(tmp_path, official_tiny,
                                               tiny_model, converted_official):
    old = OrderedDict((k, v) for k, v in official_tiny.items()
                      if not k.endswith('num_batches_tracked'))
    assert len(old) < len(official_tiny)
    src = tmp_path / 'old.pth'
    torch.save(old, src)
    result = convert_checkpoint(src, model=tiny_model)
    assert len(result.filled_keys) == len(official_tiny) - len(old)
    assert all(k.endswith('num_batches_tracked') for k in result.filled_keys)
    assert set(result.state_dict) == set(converted_official)


# ------------------------------------------------------------------ errors


def _save_modified(tmp_path, official, name, drop=(), add=None):
    state_dict = OrderedDict(
        (k, v) for k, v in official.items() if k not in drop)
    state_dict.update(add or {})
    path = tmp_path / name
    torch.save(state_dict, path)
    return path


def test_unknown_key(tmp_path, official_tiny):
    src = _save_modified(tmp_path,
                         official_tiny,
                         'unknown.pth',
                         add={'aux_head.conv.weight': torch.zeros(3)})
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src)
    assert_names(err.value, src, "'aux_head.conv.weight'", '1 unknown key')
    assert err.value.keys == ['aux_head.conv.weight']


def test_unexpected_key(tmp_path, official_tiny, tiny_model):
    # a head key that maps but that the model does not have
    src = _save_modified(
        tmp_path,
        official_tiny,
        'extra.pth',
        add={'final_layers.2.weight': torch.zeros(17, 8, 1, 1)})
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src, model=tiny_model)
    assert_names(err.value, src, '1 unexpected key',
                 "'head.final_layers.2.weight'", "'final_layers.2.weight'")


def test_missing_key(tmp_path, official_tiny, tiny_model):
    drop = [
        'deconv_layers.0.1.0.conv1.weight', 'stage3.0.fuse_layers.1.0.0.'
        '0.weight'
    ]
    assert all(k in official_tiny for k in drop)
    src = _save_modified(tmp_path, official_tiny, 'missing.pth', drop=drop)
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src, config=TINY_CONFIG)
    assert_names(err.value, src, '2 missing keys',
                 "'head.deconv_layers.0.1.0.conv1.weight'",
                 "'backbone.stage3.0.fuse_layers.1.0.0.0.weight'")


def test_shape_mismatch(tmp_path, official_tiny, tiny_model):
    src = _save_modified(tmp_path,
                         official_tiny,
                         'crowdpose.pth',
                         add={
                             'final_layers.1.weight': torch.zeros(14, 8, 1, 1),
                             'final_layers.1.bias': torch.zeros(14)
                         })
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src, model=tiny_model)
    assert_names(
        err.value, src, '2 shape mismatches',
        "'head.final_layers.1.weight' checkpoint (14, 8, 1, 1) vs "
        'model (17, 8, 1, 1)', "'head.final_layers.1.bias'", '14 keypoints')


def test_wrong_width_names_architecture(tiny_ckpt):
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(tiny_ckpt, config=W32_CONFIG)
    assert_names(err.value, tiny_ckpt, 'missing keys', 'shape mismatches',
                 'checkpoint: width 8', 'model: width 32', str(W32_CONFIG))


def test_truncated_file(tmp_path, tiny_ckpt):
    data = tiny_ckpt.read_bytes()
    src = tmp_path / 'truncated.pth'
    src.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointConversionError) as err:
        load_source_state_dict(src)
    assert_names(err.value, src, 'truncated or corrupt')


def test_truncated_legacy_file(tmp_path, official_tiny):
    full = tmp_path / 'legacy.pth'
    torch.save(official_tiny, full, _use_new_zipfile_serialization=False)
    data = full.read_bytes()
    src = tmp_path / 'legacy_truncated.pth'
    src.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src)
    assert_names(err.value, src, 'truncated or corrupt')
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src, trust_source=True)
    assert_names(err.value, src, 'truncated or corrupt')


@pytest.mark.parametrize('content, fragment', [
    (b'model:\n  backbone: hrnet\n', 'not a PyTorch checkpoint'),
    (b'', 'empty'),
],
                         ids=['text', 'empty'])
def test_not_a_checkpoint(tmp_path, content, fragment):
    src = tmp_path / 'notes.pth'
    src.write_bytes(content)
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src)
    assert_names(err.value, src, fragment)


def test_missing_file(tmp_path):
    src = tmp_path / 'nope.pth'
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src)
    assert_names(err.value, src, 'no such file')


@pytest.mark.parametrize('obj, fragment', [
    (torch.zeros(3), 'found a Tensor'),
    ({
        'epoch': 3,
        'meta': {
            'x': 1
        }
    }, 'no state dict found'),
    ({
        'state_dict': {}
    }, 'no state dict found'),
],
                         ids=['tensor', 'no-weights', 'empty-state_dict'])
def test_no_state_dict(tmp_path, obj, fragment):
    src = tmp_path / 'odd.pth'
    torch.save(obj, src)
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src)
    assert_names(err.value, src, fragment)


def test_resnet_classifier_checkpoint(tmp_path):
    from mmpose.models.backbones import ResNet
    state_dict = ResNet(depth=18).state_dict()
    state_dict['fc.weight'] = torch.zeros(1000, 512)
    state_dict['fc.bias'] = torch.zeros(1000)
    src = tmp_path / 'resnet18_imagenet.pth'
    torch.save({'state_dict': state_dict}, src)
    foreign = [
        k for k in state_dict
        if k.split('.')[0] in ('layer2', 'layer3', 'layer4', 'fc')
    ]
    assert foreign
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src, config=TINY_CONFIG)
    assert_names(err.value, src, f'{len(foreign)} unknown keys',
                 repr(foreign[0]), 'classification')
    assert sorted(err.value.keys) == sorted(foreign)


def test_checkpoint_of_unrelated_model(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    src = tmp_path / 'mlp.pth'
    torch.save(model.state_dict(), src)
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src)
    assert_names(err.value, src, 'not a HigherHRNet checkpoint', "'0.weight'")


def test_numpy_meta_loads_weights_only(tmp_path, official_tiny, tiny_model,
                                      converted_official):
    """MMPose 0.x checkpoints keep numpy scalars in their meta: the
    weights-only allowlist covers them, no trust needed."""
    src = tmp_path / 'with_numpy_meta.pth'
    torch.save(
        {
            'state_dict': to_mmpose0x(official_tiny),
            'meta': {
                'hook_msgs': {
                    'best_score': np.float64(0.677)
                }
            }
        }, src)
    result = convert_checkpoint(src, model=tiny_model)
    assert result.layout == 'mmpose0x'
    assert_same_state_dict(result.state_dict, converted_official)


def test_pickled_objects_need_trust(tmp_path, official_tiny, tiny_model,
                                    converted_official):
    import argparse
    src = tmp_path / 'with_namespace.pth'
    torch.save(
        {
            'state_dict': to_mmpose0x(official_tiny),
            'args': argparse.Namespace(lr=0.1)
        }, src)
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src)
    assert_names(err.value, src, 'refused to unpickle argparse.Namespace',
                 '--trust-source')
    result = convert_checkpoint(src, model=tiny_model, trust_source=True)
    assert result.layout == 'mmpose0x'
    assert_same_state_dict(result.state_dict, converted_official)


# --------------------------------------------------------------------- CLI


def _run_cli(*args):
    return subprocess.run(
        [sys.executable, str(CLI), *map(str, args)],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300)


@pytest.mark.slow
def test_cli_converts_and_checks(tmp_path, tiny_ckpt, converted_official):
    dst = tmp_path / 'tiny_mmpose1x.pth'
    proc = _run_cli(tiny_ckpt, dst, '--config', TINY_CONFIG)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert 'official' in proc.stdout
    assert str(len(converted_official)) in proc.stdout
    assert str(dst) in proc.stdout
    assert 'loads strictly' in proc.stdout
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert saved['meta']['checked_against_config'] == str(TINY_CONFIG)
    assert_same_state_dict(saved['state_dict'], converted_official)


@pytest.mark.slow
def test_cli_reports_bad_file(tmp_path):
    src = tmp_path / 'corrupt.pth'
    src.write_bytes(b'PK\x03\x04' + b'\x00' * 100)
    dst = tmp_path / 'out.pth'
    proc = _run_cli(src, dst, '--config', TINY_CONFIG)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr + proc.stdout, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(src) in lines[0] and 'error' in lines[0], lines[0]
    assert 'truncated or corrupt' in lines[0], lines[0]
    assert not dst.exists()
