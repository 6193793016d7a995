"""Fold inference-time BatchNorm into the convolutions before it."""
import torch
from torch import nn

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.SyncBatchNorm)


def _fold(conv: nn.Module, norm: nn.Module) -> None:
    """Make ``conv`` compute ``norm(conv(x))`` with ``norm``'s running
    statistics (what it computes in eval mode)."""
    with torch.no_grad():
        gain = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(
            norm.running_mean)
        # output channels are dim 0 of a Conv2d weight (out, in, kh, kw)
        # and dim 1 of a ConvTranspose2d weight (in, out / groups, kh, kw)
        shape = [1] * conv.weight.dim()
        out_dim = 1 if isinstance(conv, nn.ConvTranspose2d) else 0
        shape[out_dim] = -1
        if isinstance(conv, nn.ConvTranspose2d) and conv.groups > 1:
            raise ValueError('grouped transposed convolutions are not fused')
        conv.weight = nn.Parameter(conv.weight * gain.reshape(shape))
        conv.bias = nn.Parameter((bias - norm.running_mean) * gain +
                                 norm.bias)


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution (a
    ``Conv2d`` or, as in HigherHRNet's deconvolution modules, a
    ``ConvTranspose2d``) into it, and replace the BatchNorm with
    ``nn.Identity``, in place: the inference-time option MMDetection offers
    as ``--fuse-conv-bn``.

    "Directly follows" means: the next child module of the same parent, as
    in ``nn.Sequential(conv, bn, relu)`` and MMPose's blocks (``conv1``,
    ``norm1``, ...). The result computes the same outputs as the model in
    eval mode, to float rounding; it must not be trained any more.

    Args:
        module (nn.Module): a model in eval mode.

    Returns:
        nn.Module: ``module``, fused.
    """
    if module.training:
        raise RuntimeError('fuse_conv_bn changes what BatchNorm computes in '
                           'training; call model.eval() first')
    previous = None  # (name, conv) of the child just before
    for name, child in list(module.named_children()):
        if isinstance(child, _NORMS) and previous is not None:
            _fold(previous[1], child)
            setattr(module, name, nn.Identity())
            previous = None
        elif isinstance(child, _CONVS):
            previous = (name, child)
        else:
            fuse_conv_bn(child)
            previous = None
    return module
