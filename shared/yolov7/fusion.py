"""Inference-time folding: Conv+BN, RepConv re-parameterisation, implicit-layer folding.

All three are exact in real arithmetic and move fp32 results only at noise level (format
spec 3.3, fixture README: ≤ 3e-6 relative). The fused structure equals the official fused
layout (``conv.bias`` without ``bn``; ``rbr_reparam``; ``m`` folded, ``ia``/``im`` kept), so
fused official checkpoints load into a model fused by :func:`fuse_model`.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from shared.yolov7 import layers as L


def _fold_bn(weight: Tensor, bias: Tensor | None, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    assert bn.running_var is not None and bn.running_mean is not None
    g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = weight * g.view(-1, 1, 1, 1)
    b0 = bias if bias is not None else torch.zeros_like(bn.running_mean)
    b = bn.bias + (b0 - bn.running_mean) * g
    return w, b


def _conv_with(conv: nn.Conv2d, weight: Tensor, bias: Tensor) -> nn.Conv2d:
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        conv.stride,  # type: ignore[arg-type]
        conv.padding,  # type: ignore[arg-type]
        conv.dilation,  # type: ignore[arg-type]
        conv.groups,
        bias=True,
    ).to(weight.device, weight.dtype)
    fused.weight.data.copy_(weight)
    assert fused.bias is not None
    fused.bias.data.copy_(bias)
    fused.weight.requires_grad_(False)
    fused.bias.requires_grad_(False)
    return fused


def fuse_conv(module: L.Conv) -> None:
    if module.bn is None:
        return
    w, b = _fold_bn(module.conv.weight, module.conv.bias, module.bn)
    module.conv = _conv_with(module.conv, w, b)
    module.bn = None


def reparameterize_repconv(module: L.RepConv) -> None:
    if module.rbr_reparam is not None:
        return
    assert module.rbr_dense is not None and module.rbr_1x1 is not None
    dense_conv = cast(nn.Conv2d, module.rbr_dense[0])
    dense_bn = cast(nn.BatchNorm2d, module.rbr_dense[1])
    one_conv = cast(nn.Conv2d, module.rbr_1x1[0])
    one_bn = cast(nn.BatchNorm2d, module.rbr_1x1[1])
    w3, b3 = _fold_bn(dense_conv.weight, None, dense_bn)
    w1, b1 = _fold_bn(one_conv.weight, None, one_bn)
    weight = w3 + nn.functional.pad(w1, [1, 1, 1, 1])
    bias = b3 + b1
    if module.rbr_identity is not None:
        per_group = module.in_channels // module.groups
        eye = torch.zeros_like(w3)
        for o in range(module.out_channels):
            eye[o, o % per_group, 1, 1] = 1.0
        wi, bi = _fold_bn(eye, None, module.rbr_identity)
        weight = weight + wi
        bias = bias + bi
    module.rbr_reparam = _conv_with(dense_conv, weight, bias)
    module.rbr_dense = module.rbr_1x1 = module.rbr_identity = None
    module.deploy = True


def fold_implicit(head: L.Detect) -> None:
    """IDetect/IAuxDetect lead convs: ``im ⊙ (W(x + ia) + b)`` → ``(im ⊙ W)x + im ⊙ (b + W·ia)``.

    Afterwards the head skips ``ia``/``im`` (kept in the state dict, like the official code).
    """
    if not isinstance(head, L.IDetect) or head.fused:
        return
    with torch.no_grad():
        for conv_m, ia_m, im_m in zip(head.m, head.ia, head.im, strict=True):
            conv = cast(nn.Conv2d, conv_m)
            ia, im = cast(L.ImplicitA, ia_m), cast(L.ImplicitM, im_m)
            assert conv.bias is not None
            w2d = conv.weight.view(conv.out_channels, -1)
            shift = (w2d @ ia.implicit.view(-1, 1)).view(-1)
            scale = im.implicit.view(-1)
            conv.bias.copy_((conv.bias + shift) * scale)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
    head.fused = True


@torch.no_grad()
def fuse_model(model: nn.Module) -> nn.Module:
    """Fold every Conv+BN, RepConv and implicit head in place; returns the model."""
    for module in list(model.modules()):
        if isinstance(module, L.Conv):
            fuse_conv(module)
        elif isinstance(module, L.RepConv):
            reparameterize_repconv(module)
        elif isinstance(module, L.IDetect):
            fold_implicit(module)
    return model


def is_fused(model: nn.Module) -> bool:
    return any(isinstance(m, L.Conv) and m.bn is None for m in model.modules())
