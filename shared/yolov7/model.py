"""The YOLOv7 network built from a config, with one forward that returns detections+features.

``YoloModel.model`` is an ``nn.Sequential`` whose children are named ``'0'``, ``'1'``, … so
that state-dict keys are the official ``model.<i>.…`` names.

Forward contract:

* **training mode** (``model.train()``): ``forward(x)`` returns the head's raw per-level
  tensors, a list of nl tensors ``[B, na, H_l, W_l, nc + 5]`` (pre-sigmoid; IAuxDetect: 2·nl,
  lead levels first). Anchors: ``model.anchors_pixels`` [nl, na, 2]; strides:
  ``model.strides`` (e.g. ``(8.0, 16.0, 32.0)``).
* **eval mode**: ``forward(x, feature_layers=(99,))`` returns a :class:`ModelOutput`:
  decoded rows ``[B, N, nc + 5]`` (cx, cy, w, h in network-input pixels; objectness and
  class probabilities), the raw level tensors, and the requested layers' outputs — all from
  one pass. Layers that cannot influence the result (IAuxDetect's auxiliary branch) are
  skipped.

``x`` is ``[B, 3, H, W]`` float RGB in [0, 1], H and W multiples of ``max_stride``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from torch import Tensor, nn

from shared.yolov7 import layers as L
from shared.yolov7.config import LayerSpec, ParsedConfig, default_feature_layer, parse_config
from shared.yolov7.errors import ConfigError


@dataclass
class ModelOutput:
    """Eval-mode result of one forward pass.

    ``decoded`` [B, N, no] (network-input pixels), ``raws`` nl × [B, na, H, W, no],
    ``features`` maps requested layer index → that layer's output tensor [B, C, H, W].
    """

    decoded: Tensor
    raws: list[Tensor]
    features: dict[int, Tensor]


def _build_layer(spec: LayerSpec, parsed: ParsedConfig) -> nn.Module:
    args = list(spec.args)
    c1 = spec.c_in[0]
    name = spec.module
    if name == "Conv":
        return L.Conv(c1, *args)
    if name == "RepConv":
        return L.RepConv(c1, *args)
    if name == "SPPCSPC":
        return L.SPPCSPC(c1, args[0], spec.number, *args[1:])
    if name == "DownC":
        return L.DownC(c1, args[0], spec.number, *args[1:])
    if name == "nn.Conv2d":
        return nn.Conv2d(c1, *args)
    if name == "Concat":
        return L.Concat(*args)
    if name == "Shortcut":
        return L.Shortcut(*args)
    if name == "MP":
        return L.MP(*args)
    if name == "SP":
        return L.SP(*args)
    if name == "ReOrg":
        return L.ReOrg()
    if name == "nn.Upsample":
        size, scale, mode = (args + [None, 2.0, "nearest"][len(args) :])[:3]
        return nn.Upsample(size=size, scale_factor=scale, mode=mode)
    head_cls = {"Detect": L.Detect, "IDetect": L.IDetect, "IAuxDetect": L.IAuxDetect}[name]
    return head_cls(parsed.nc, parsed.anchors, spec.c_in, parsed.head_strides)


class YoloModel(nn.Module):
    """A YOLOv7-family network; see the module docstring for the forward contract."""

    def __init__(self, config: dict[str, Any], nc: int | None = None) -> None:
        super().__init__()
        self.parsed = parse_config(config, nc)
        self.config = dict(config)
        self.config["nc"] = self.parsed.nc
        modules = []
        for spec in self.parsed.layers:
            if spec.number > 1 and spec.module not in {"SPPCSPC", "DownC"}:
                block: nn.Module = nn.Sequential(
                    *(_build_layer(spec, self.parsed) for _ in range(spec.number))
                )
            else:
                block = _build_layer(spec, self.parsed)
            modules.append(block)
        self.model = nn.Sequential(*modules)
        self.names: list[str] = [str(i) for i in range(self.parsed.nc)]
        self._plans: dict[tuple[int, ...], tuple[frozenset[int], frozenset[int]]] = {}

    # --- metadata --------------------------------------------------------------------
    @property
    def head(self) -> L.Detect:
        return cast(L.Detect, self.model[-1])

    @property
    def nc(self) -> int:
        return self.parsed.nc

    @property
    def strides(self) -> tuple[float, ...]:
        return self.parsed.head_strides

    @property
    def max_stride(self) -> int:
        return self.parsed.max_stride

    @property
    def anchors_pixels(self) -> Tensor:
        """[nl, na, 2] anchor sizes in network-input pixels."""
        return self.head.anchor_grid.view(self.head.nl, self.head.na, 2)

    @property
    def num_layers(self) -> int:
        return len(self.parsed.layers)

    def default_feature_layers(self) -> tuple[int, ...]:
        return (default_feature_layer(self.parsed),)

    def layer_stride(self, index: int) -> float:
        return self.parsed.layers[index].stride

    def layer_channels(self, index: int) -> int:
        return self.parsed.layers[index].c_out

    # --- forward ---------------------------------------------------------------------
    def _plan(self, keep: tuple[int, ...]) -> tuple[frozenset[int], frozenset[int]]:
        """Layers to run in eval mode and outputs to keep, for the requested features."""
        plan = self._plans.get(keep)
        if plan is not None:
            return plan
        head = self.parsed.head
        needed: set[int] = set()
        stack = list(self.parsed.lead_inputs) + list(keep)
        while stack:
            j = stack.pop()
            if j < 0 or j in needed:
                continue
            needed.add(j)
            stack.extend(self.parsed.layers[j].inputs)
        needed.add(head.index)
        retain = set(self.parsed.save) | set(keep)
        plan = (frozenset(needed), frozenset(retain))
        self._plans[keep] = plan
        return plan

    def forward(self, x: Tensor, feature_layers: Sequence[int] = ()) -> ModelOutput | list[Tensor]:
        keep = tuple(sorted({int(i) for i in feature_layers}))
        for i in keep:
            if not 0 <= i < self.num_layers - 1:
                raise ConfigError(
                    f"feature layer {i} does not exist (layers 0..{self.num_layers - 2})"
                )
        if self.training:
            needed = frozenset(range(self.num_layers))
            retain = frozenset(self.parsed.save) | frozenset(keep)
        else:
            needed, retain = self._plan(keep)
        saved: dict[int, Tensor] = {}
        y: Any = x
        last = -1
        for spec, module in zip(self.parsed.layers, self.model, strict=True):
            if spec.index not in needed:
                continue
            if len(spec.inputs) == 1 and not isinstance(spec.source_from, list):
                j = spec.inputs[0]
                inp: Any = y if j == last or j == -1 else saved[j]
            else:
                # .get: in eval mode IAuxDetect's auxiliary inputs are never computed
                inp = [y if j == last else saved.get(j) for j in spec.inputs]
            y = module(inp)
            last = spec.index
            if spec.index in retain:
                saved[spec.index] = y
        if self.training:
            return cast(list[Tensor], y)
        decoded, raws = y
        return ModelOutput(decoded=decoded, raws=raws, features={i: saved[i] for i in keep})

    def run_all_layers(self, x: Tensor) -> tuple[dict[int, Tensor], ModelOutput]:
        """Eval forward keeping every layer's output (inspection and parity tests only)."""
        out = self.forward(x, feature_layers=range(self.num_layers - 1))
        assert isinstance(out, ModelOutput)
        return out.features, out


def build_model(config: dict[str, Any], nc: int | None = None) -> YoloModel:
    """A fresh (randomly initialised) model from an architecture config.

    BatchNorm uses eps 1e-3 / momentum 0.03 like the official models; head biases get a
    prior-based init suitable for training from scratch. Returned in eval mode.
    """
    model = YoloModel(config, nc)
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.bias is None:
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    L.initialize_head_biases(model.head)
    return model.eval()


def required_layers(model: YoloModel, feature_layers: Iterable[int]) -> frozenset[int]:
    """The layers an eval forward computes for these features (for inspection)."""
    return model._plan(tuple(sorted(set(feature_layers))))[0]
