"""Parse a YOLOv7 architecture description (the upstream yaml dict) without ``eval``.

A config is a plain dict: ``nc``, ``depth_multiple``, ``width_multiple``, ``anchors`` and the
row lists ``backbone`` + ``head``; each row is ``[from, number, module, args]`` (see the
format spec, section 2). :func:`parse_config` resolves every row into a :class:`LayerSpec`
with absolute input indices, literal arguments, input/output channel counts and the stride
of its output relative to the network input, and computes the save list.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.yolov7.errors import ConfigError

CONV_LIKE = frozenset({"Conv", "RepConv", "SPPCSPC", "DownC", "nn.Conv2d"})
HEADS = frozenset({"Detect", "IDetect", "IAuxDetect"})
SUPPORTED = CONV_LIKE | HEADS | {"Concat", "MP", "SP", "nn.Upsample", "ReOrg", "Shortcut"}

_ACT_PATTERN = re.compile(r"^nn\.(LeakyReLU|SiLU|ReLU|Identity|Hardswish|Mish|Sigmoid)\((.*)\)$")


@dataclass(frozen=True)
class Activation:
    """An activation named in a config: ``kind`` is silu, leaky, relu, identity, ..."""

    kind: str
    negative_slope: float = 0.01


@dataclass(frozen=True)
class LayerSpec:
    """One resolved row of the config.

    ``inputs`` are absolute layer indices (``-1`` only for layer 0: the network input);
    ``args`` are literal values (activations as :class:`Activation`); ``c_in`` lists the
    channel count of each input; ``stride`` is the output's down-sampling factor relative
    to the network input (0 for heads).
    """

    index: int
    module: str
    source_from: int | list[int]
    inputs: tuple[int, ...]
    number: int
    args: tuple[Any, ...]
    c_in: tuple[int, ...]
    c_out: int
    stride: float


@dataclass(frozen=True)
class ParsedConfig:
    """The whole resolved architecture."""

    raw: dict[str, Any]
    nc: int
    anchors: tuple[tuple[float, ...], ...]
    layers: tuple[LayerSpec, ...]
    save: tuple[int, ...]
    head_strides: tuple[float, ...] = field(default=())

    @property
    def head(self) -> LayerSpec:
        return self.layers[-1]

    @property
    def head_type(self) -> str:
        return self.head.module

    @property
    def nl(self) -> int:
        return len(self.anchors)

    @property
    def na(self) -> int:
        return len(self.anchors[0]) // 2

    @property
    def max_stride(self) -> int:
        return int(max(self.head_strides))

    @property
    def lead_inputs(self) -> tuple[int, ...]:
        """Head inputs whose outputs reach the inference result (IAuxDetect: first nl)."""
        return self.head.inputs[: self.nl]


def parse_activation(value: Any) -> Activation | bool:
    """Turn a Conv ``act`` argument into an Activation, without evaluating strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Activation):
        return value
    if isinstance(value, str):
        match = _ACT_PATTERN.match(value.replace(" ", ""))
        if match:
            kind, arg = match.group(1).lower(), match.group(2)
            if kind == "leakyrelu":
                slope = 0.01
                if arg:
                    arg = arg.split(",")[0]
                    if arg.startswith("negative_slope="):
                        arg = arg.split("=", 1)[1]
                    try:
                        slope = float(arg)
                    except ValueError:
                        raise ConfigError(f"cannot read the LeakyReLU slope in {value!r}") from None
                return Activation("leaky", slope)
            return Activation(kind)
        if value == "True":
            return True
        if value == "False":
            return False
    raise ConfigError(f"unsupported activation argument {value!r}")


def _literal(value: Any, nc: int, anchors: Any) -> Any:
    """Resolve the strings upstream would ``eval`` in an args list (never eval)."""
    if not isinstance(value, str):
        return value
    if value == "None":
        return None
    if value == "nc":
        return nc
    if value == "anchors":
        return anchors
    if value in {"True", "False"}:
        return value == "True"
    if value.startswith("nn."):
        return parse_activation(value)
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def make_divisible(value: float, divisor: int = 8) -> int:
    return math.ceil(value / divisor) * divisor


def _resolve_from(f: Any, index: int) -> tuple[int, ...]:
    items = f if isinstance(f, list) else [f]
    out = []
    for item in items:
        if not isinstance(item, int):
            raise ConfigError(f"layer {index}: 'from' entry {item!r} is not an integer")
        resolved = item if item >= 0 else index + item
        if index == 0 and item == -1:
            resolved = -1
        elif resolved < 0 or resolved >= index:
            raise ConfigError(f"layer {index}: 'from' {item} points outside earlier layers")
        out.append(resolved)
    return tuple(out)


def parse_config(config: dict[str, Any], nc: int | None = None) -> ParsedConfig:
    """Resolve a config dict; ``nc`` overrides the config's class count when given."""
    try:
        rows = list(config["backbone"]) + list(config["head"])
        anchors_raw = config["anchors"]
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"config lacks {exc} (needs backbone, head, anchors)") from None
    nc = int(config.get("nc", 80) if nc is None else nc)
    gd = float(config.get("depth_multiple", 1.0))
    gw = float(config.get("width_multiple", 1.0))
    if isinstance(anchors_raw, int):
        raise ConfigError("anchors given as a count are not supported: list them in pixels")
    anchors = tuple(tuple(float(v) for v in level) for level in anchors_raw)
    na = len(anchors[0]) // 2
    no = na * (nc + 5)
    ch_in = int(config.get("ch", 3))

    channels: list[int] = []
    strides: list[float] = []
    layers: list[LayerSpec] = []
    save: set[int] = set()
    for index, row in enumerate(rows):
        if not isinstance(row, Sequence) or len(row) != 4:
            raise ConfigError(f"layer {index}: row {row!r} is not [from, number, module, args]")
        f, number, module, args = row
        if module not in SUPPORTED:
            raise ConfigError(f"layer {index}: module {module!r} is not supported")
        inputs = _resolve_from(f, index)
        for item, resolved in zip(f if isinstance(f, list) else [f], inputs, strict=True):
            if item != -1 and resolved >= 0:
                save.add(resolved)
        c_in = tuple(ch_in if j == -1 else channels[j] for j in inputs)
        in_stride = 1.0 if inputs[0] == -1 else strides[inputs[0]]
        n = max(round(number * gd), 1) if number > 1 else int(number)
        resolved_args = [_literal(a, nc, anchors_raw) for a in args]
        stride = in_stride
        if module in CONV_LIKE:
            c2 = int(resolved_args[0])
            if c2 != no:
                c2 = make_divisible(c2 * gw, 8)
            resolved_args[0] = c2
            c_out = c2
            if module in {"Conv", "nn.Conv2d", "RepConv"}:
                s = resolved_args[2] if len(resolved_args) > 2 else 1
                stride = in_stride * float(s)
            elif module == "DownC":
                k = resolved_args[2] if len(resolved_args) > 2 else 2
                stride = in_stride * float(k)
        elif module == "Concat":
            c_out = sum(c_in)
        elif module == "Shortcut":
            c_out = c_in[0]
        elif module == "ReOrg":
            c_out = 4 * c_in[0]
            stride = in_stride * 2
        elif module == "MP":
            c_out = c_in[0]
            k = resolved_args[0] if resolved_args else 2
            stride = in_stride * float(k)
        elif module == "nn.Upsample":
            c_out = c_in[0]
            scale = resolved_args[1] if len(resolved_args) > 1 else 2
            stride = in_stride / float(scale)
        elif module in HEADS:
            if index != len(rows) - 1:
                raise ConfigError(f"layer {index}: the head {module} must be the last layer")
            c_out = 0
            stride = 0.0
        else:  # SP
            c_out = c_in[0]
        if index == 0:
            channels = []
        channels.append(c_out)
        strides.append(stride)
        layers.append(
            LayerSpec(
                index=index,
                module=module,
                source_from=f,
                inputs=inputs,
                number=n,
                args=tuple(resolved_args),
                c_in=c_in,
                c_out=c_out,
                stride=stride,
            )
        )
    if not layers or layers[-1].module not in HEADS:
        raise ConfigError("the last layer must be Detect, IDetect or IAuxDetect")
    head = layers[-1]
    nl = len(anchors)
    expected_inputs = 2 * nl if head.module == "IAuxDetect" else nl
    if len(head.inputs) != expected_inputs:
        raise ConfigError(
            f"{head.module} has {len(head.inputs)} inputs but {nl} anchor levels "
            f"(expects {expected_inputs})"
        )
    head_strides = tuple(strides[j] for j in head.inputs[:nl])
    return ParsedConfig(
        raw=config,
        nc=nc,
        anchors=anchors,
        layers=tuple(layers),
        save=tuple(sorted(save)),
        head_strides=head_strides,
    )


def default_feature_layer(parsed: ParsedConfig) -> int:
    """The documented default ROI layer: yolov7 → 99, yolov7-tiny → 71.

    Rule: start at the deepest lead head input (lowest resolution), walk back through
    single-input layers to the aggregation Concat that builds that level, and take that
    Concat's first input — the last 3×3 conv of the final ELAN-style block.
    """
    index = max(parsed.lead_inputs, key=lambda j: parsed.layers[j].stride)
    seen = 0
    while seen < 16:
        spec = parsed.layers[index]
        if spec.module == "Concat":
            return spec.inputs[0]
        if len(spec.inputs) != 1 or spec.inputs[0] < 0:
            break
        index = spec.inputs[0]
        seen += 1
    return max(parsed.lead_inputs, key=lambda j: parsed.layers[j].stride)
