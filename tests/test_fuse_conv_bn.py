"""BatchNorm folding for inference: same outputs to float rounding, no
BatchNorm left (the deconvolution's too), refused in training mode."""
import copy

import pytest
import torch
from torch import nn

from higherhrnet_plugin.models.fuse_conv_bn import fuse_conv_bn

from .conftest import TINY_CONFIG, shared_path


@pytest.fixture(scope='module')
def tiny_model():
    """The converted official tiny model: real BatchNorm statistics."""
    from higherhrnet_plugin.checkpoint_conversion import (
        build_model_from_config, convert_checkpoint)
    model = build_model_from_config(TINY_CONFIG)
    result = convert_checkpoint(
        shared_path('fixtures', 'official_tiny_higherhrnet.pth'), model=model)
    model.load_state_dict(result.state_dict)
    return model.eval()


def _norms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def test_fused_model_computes_the_same_outputs(tiny_model):
    fused = fuse_conv_bn(copy.deepcopy(tiny_model))
    assert len(_norms(tiny_model)) > 50 and _norms(fused) == []
    deconv = fused.head.deconv_layers[0][0]
    assert isinstance(deconv[0], nn.ConvTranspose2d)
    assert isinstance(deconv[1], nn.Identity) and deconv[0].bias is not None
    x = torch.randn(2, 3, 256, 320, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = tiny_model.network(x)
        got = fused.network(x)
    for out, ref in zip(got, expected):
        scale = ref.abs().max().item()
        assert scale > 1  # real statistics: outputs are far from zero
        # float32 rounding of a different summation: ~1e-7 relative
        assert (out - ref).abs().max().item() < 2e-5 * scale


def test_unfused_bn_changes_the_outputs(tiny_model):
    """The check above can fail: dropping BatchNorm without folding it
    changes the outputs entirely."""
    broken = copy.deepcopy(tiny_model)
    for parent in broken.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, nn.Identity())
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        ref, out = tiny_model.network(x)[0], broken.network(x)[0]
    assert (out - ref).abs().max().item() > 1e-2 * ref.abs().max().item()


def test_training_mode_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(RuntimeError, match='eval'):
        fuse_conv_bn(model)
