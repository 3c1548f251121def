"""Building blocks of the YOLOv7 family (written from the clean-room spec, section 3).

Submodule and tensor names equal the official state-dict names (``conv``, ``bn``, ``act``,
``cv1``…``cv7``, ``rbr_dense.0``, ``rbr_1x1.1``, ``m``, ``m2``, ``ia``, ``im``, ``anchors``,
``anchor_grid``), so ``model.<i>.…`` keys load unchanged. Every tensor is NCHW float.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from shared.yolov7.config import Activation
from shared.yolov7.max_pooling import MaxPool

BN_EPS = 1e-3
BN_MOMENTUM = 0.03


def make_activation(act: Activation | bool | nn.Module | None) -> nn.Module:
    """``True`` → SiLU (the family default); an Activation → that; anything else → identity."""
    if act is True:
        return nn.SiLU()
    if isinstance(act, nn.Module):
        return act
    if isinstance(act, Activation):
        if act.kind == "leaky":
            return nn.LeakyReLU(act.negative_slope, inplace=True)
        table: dict[str, type[nn.Module]] = {
            "silu": nn.SiLU,
            "relu": nn.ReLU,
            "identity": nn.Identity,
            "hardswish": nn.Hardswish,
            "mish": nn.Mish,
            "sigmoid": nn.Sigmoid,
        }
        return table[act.kind]()
    return nn.Identity()


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class Conv(nn.Module):
    """Conv2d (no bias) → BatchNorm → activation; after fusion: Conv2d with bias → act."""

    def __init__(
        self,
        c1: int,
        c2: int,
        k: int = 1,
        s: int = 1,
        p: int | None = None,
        g: int = 1,
        act: Activation | bool | nn.Module | None = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, groups=g, bias=False)
        self.bn: nn.BatchNorm2d | None = _bn(c2)
        self.act = make_activation(act)

    def forward(self, x: Tensor) -> Tensor:
        if self.bn is None:
            return self.act(self.conv(x))
        return self.act(self.bn(self.conv(x)))


class MP(nn.Module):
    """k×k max-pool with stride k (k = 2)."""

    def __init__(self, k: int = 2) -> None:
        super().__init__()
        self.m = MaxPool(k, stride=k)

    def forward(self, x: Tensor) -> Tensor:
        return self.m(x)


class SP(nn.Module):
    """k×k max-pool, stride 1, same padding."""

    def __init__(self, k: int = 3, s: int = 1) -> None:
        super().__init__()
        self.m: nn.Module = (
            MaxPool(k) if s == 1 else nn.MaxPool2d(kernel_size=k, stride=s, padding=k // 2)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.m(x)


class Concat(nn.Module):
    def __init__(self, dimension: int = 1) -> None:
        super().__init__()
        self.d = dimension

    def forward(self, x: list[Tensor]) -> Tensor:
        return torch.cat(x, self.d)


class Shortcut(nn.Module):
    """Sum of two inputs (P6 e6e)."""

    def __init__(self, dimension: int = 0) -> None:
        super().__init__()
        self.d = dimension

    def forward(self, x: list[Tensor]) -> Tensor:
        return x[0] + x[1]


class ReOrg(nn.Module):
    """Space-to-depth: (even r, even c), (odd r, even c), (even r, odd c), (odd r, odd c)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1
        )


class SPPCSPC(nn.Module):
    """CSP block around three stride-1 max-pools (5, 9, 13); hidden width = c2 · e · 2."""

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        shortcut: bool = False,
        g: int = 1,
        e: float = 0.5,
        k: tuple[int, ...] = (5, 9, 13),
    ) -> None:
        super().__init__()
        h = int(2 * c2 * e)
        self.cv1 = Conv(c1, h, 1, 1)
        self.cv2 = Conv(c1, h, 1, 1)
        self.cv3 = Conv(h, h, 3, 1)
        self.cv4 = Conv(h, h, 1, 1)
        self.m = nn.ModuleList(MaxPool(x) for x in k)
        self.cv5 = Conv(4 * h, h, 1, 1)
        self.cv6 = Conv(h, h, 3, 1)
        self.cv7 = Conv(2 * h, c2, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.cv4(self.cv3(self.cv1(x)))
        b = self.cv6(self.cv5(torch.cat([a] + [pool(a) for pool in self.m], 1)))
        return self.cv7(torch.cat((b, self.cv2(x)), dim=1))


class RepConv(nn.Module):
    """3×3 conv+BN plus 1×1 conv+BN (plus identity BN when shapes allow), summed, then act.

    After :meth:`reparameterize` a single 3×3 conv with bias (``rbr_reparam``) replaces the
    branches — the official fused layout.
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        k: int = 3,
        s: int = 1,
        p: int | None = None,
        g: int = 1,
        act: Activation | bool | nn.Module | None = True,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        if k != 3:
            raise ValueError("RepConv supports only 3×3 kernels")
        self.deploy = deploy
        self.groups = g
        self.in_channels = c1
        self.out_channels = c2
        self.act = make_activation(act)
        self.rbr_identity: nn.BatchNorm2d | None = _bn(c1) if c2 == c1 and s == 1 else None
        self.rbr_dense: nn.Sequential | None = nn.Sequential(
            nn.Conv2d(c1, c2, 3, s, 1, groups=g, bias=False), _bn(c2)
        )
        self.rbr_1x1: nn.Sequential | None = nn.Sequential(
            nn.Conv2d(c1, c2, 1, s, 0, groups=g, bias=False), _bn(c2)
        )
        self.rbr_reparam: nn.Conv2d | None = None
        if deploy:
            self.rbr_reparam = nn.Conv2d(c1, c2, 3, s, 1, groups=g, bias=True)
            self.rbr_identity = self.rbr_dense = self.rbr_1x1 = None

    def forward(self, x: Tensor) -> Tensor:
        if self.rbr_reparam is not None:
            return self.act(self.rbr_reparam(x))
        assert self.rbr_dense is not None and self.rbr_1x1 is not None
        y = self.rbr_dense(x) + self.rbr_1x1(x)
        if self.rbr_identity is not None:
            y = y + self.rbr_identity(x)
        return self.act(y)


class DownC(nn.Module):
    """Down-sampling by k: cat(strided 3×3 conv path, max-pool + 1×1 conv path)."""

    def __init__(self, c1: int, c2: int, n: int = 1, k: int = 2) -> None:
        super().__init__()
        self.cv1 = Conv(c1, c1, 1, 1)
        self.cv2 = Conv(c1, c2 // 2, 3, k, 1)
        self.cv3 = Conv(c1, c2 // 2, 1, 1)
        self.mp = MaxPool(k, stride=k)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.cv2(self.cv1(x)), self.cv3(self.mp(x))), dim=1)


class ImplicitA(nn.Module):
    """Learned per-channel constant added to the input: ``implicit`` [1, C, 1, 1]."""

    def __init__(self, channel: int, mean: float = 0.0, std: float = 0.02) -> None:
        super().__init__()
        self.implicit = nn.Parameter(torch.zeros(1, channel, 1, 1))
        nn.init.normal_(self.implicit, mean=mean, std=std)

    def forward(self, x: Tensor) -> Tensor:
        return self.implicit + x


class ImplicitM(nn.Module):
    """Learned per-channel factor: ``implicit`` [1, C, 1, 1]."""

    def __init__(self, channel: int, mean: float = 1.0, std: float = 0.02) -> None:
        super().__init__()
        self.implicit = nn.Parameter(torch.ones(1, channel, 1, 1))
        nn.init.normal_(self.implicit, mean=mean, std=std)

    def forward(self, x: Tensor) -> Tensor:
        return self.implicit * x


class Detect(nn.Module):
    """Detection head (Detect; subclasses add implicit layers / an auxiliary branch).

    Input: the nl head feature maps ``[B, C_i, H_i, W_i]``. Output:

    * training mode: list of nl raw tensors ``[B, na, H_i, W_i, no]`` (pre-sigmoid logits,
      ``no = nc + 5``: x, y, w, h, obj, classes) — IAuxDetect returns 2·nl (lead, then aux);
    * eval mode: ``(decoded [B, N, no], raws)`` where decoded rows are ``cx, cy, w, h`` in
      network-input pixels, objectness and class probabilities (sigmoid), levels
      concatenated level-major, then anchor, row, column.

    ``anchors`` [nl, na, 2] are in grid units, ``anchor_grid`` [nl, 1, na, 1, 1, 2] in pixels.
    """

    implicit = False
    auxiliary = False
    stride: Tensor
    anchors: Tensor
    anchor_grid: Tensor

    def __init__(
        self,
        nc: int = 80,
        anchors: tuple[tuple[float, ...], ...] = (),
        ch: tuple[int, ...] = (),
        strides: tuple[float, ...] = (),
    ) -> None:
        super().__init__()
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.fused = False
        stride = torch.tensor(strides if strides else [8.0 * 2**i for i in range(self.nl)])
        self.register_buffer("stride", stride.float(), persistent=False)
        pixels = torch.tensor(anchors, dtype=torch.float32).view(self.nl, -1, 2)
        self.register_buffer("anchors", pixels / self.stride.view(-1, 1, 1))
        self.register_buffer("anchor_grid", pixels.clone().view(self.nl, 1, -1, 1, 1, 2))
        lead = ch[: self.nl]
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in lead)
        self._grids: dict[tuple[int, int, int], Tensor] = {}

    def _lead_raw(self, i: int, x: Tensor) -> Tensor:
        return self.m[i](x)

    def _reshape(self, t: Tensor) -> Tensor:
        b, _, h, w = t.shape
        return t.view(b, self.na, self.no, h, w).permute(0, 1, 3, 4, 2).contiguous()

    def _grid(self, i: int, h: int, w: int, like: Tensor) -> Tensor:
        key = (i, h, w)
        grid = self._grids.get(key)
        if grid is None or grid.device != like.device or grid.dtype != like.dtype:
            yv, xv = torch.meshgrid(
                torch.arange(h, device=like.device),
                torch.arange(w, device=like.device),
                indexing="ij",
            )
            grid = torch.stack((xv, yv), 2).view(1, 1, h, w, 2).to(like.dtype)
            self._grids[key] = grid
        return grid

    def decode(self, raws: list[Tensor]) -> Tensor:
        """Raw level tensors ``[B, na, H, W, no]`` → decoded rows ``[B, N, no]``."""
        out = []
        for i, t in enumerate(raws):
            b, _, h, w, _ = t.shape
            y = t.sigmoid()
            grid = self._grid(i, h, w, y)
            xy = (y[..., 0:2] * 2.0 - 0.5 + grid) * self.stride[i].to(y.dtype)
            wh = (y[..., 2:4] * 2) ** 2 * self.anchor_grid[i].to(y.dtype)
            out.append(torch.cat((xy, wh, y[..., 4:]), -1).view(b, -1, self.no))
        return torch.cat(out, 1)

    def forward(self, x: list[Tensor]) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        raws = [self._reshape(self._lead_raw(i, x[i])) for i in range(self.nl)]
        if self.training:
            return raws
        return self.decode(raws), raws


class IDetect(Detect):
    """Detect with ImplicitA added before and ImplicitM multiplied after each lead conv."""

    implicit = True

    def __init__(
        self,
        nc: int = 80,
        anchors: tuple[tuple[float, ...], ...] = (),
        ch: tuple[int, ...] = (),
        strides: tuple[float, ...] = (),
    ) -> None:
        super().__init__(nc, anchors, ch, strides)
        lead = ch[: self.nl]
        self.ia = nn.ModuleList(ImplicitA(c) for c in lead)
        self.im = nn.ModuleList(ImplicitM(self.no * self.na) for _ in lead)

    def _lead_raw(self, i: int, x: Tensor) -> Tensor:
        if self.fused:  # implicits already folded into m[i]
            return self.m[i](x)
        return self.im[i](self.m[i](self.ia[i](x)))


class IAuxDetect(IDetect):
    """IDetect on the first nl inputs plus auxiliary convs ``m2`` on the last nl (training only).

    In eval mode the auxiliary inputs do not influence the result (the model does not even
    compute the layers that only feed them).
    """

    auxiliary = True

    def __init__(
        self,
        nc: int = 80,
        anchors: tuple[tuple[float, ...], ...] = (),
        ch: tuple[int, ...] = (),
        strides: tuple[float, ...] = (),
    ) -> None:
        super().__init__(nc, anchors, ch, strides)
        self.m2 = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch[self.nl :])

    def forward(self, x: list[Tensor]) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        raws = [self._reshape(self._lead_raw(i, x[i])) for i in range(self.nl)]
        if self.training:
            aux = [self._reshape(self.m2[i](x[self.nl + i])) for i in range(self.nl)]
            return raws + aux
        return self.decode(raws), raws


def initialize_head_biases(head: Detect, image_size: int = 640) -> None:
    """Prior-based bias init for training from scratch (≈8 objects per image, uniform classes).

    Start the objectness logit at the log-odds of ~8 objects per image spread over the
    level's cells, and the class logits at ~0.6/nc, so early losses are balanced.
    """
    with torch.no_grad():
        for conv, s in zip(head.m, head.stride.tolist(), strict=True):
            assert isinstance(conv, nn.Conv2d) and conv.bias is not None
            b = conv.bias.view(head.na, -1)
            b[:, 4] += math.log(8 / (image_size / s) ** 2)
            b[:, 5:] += math.log(0.6 / max(head.nc - 0.99, 1e-3))
