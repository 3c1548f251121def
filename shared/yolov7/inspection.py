"""Layer table of a model for an input size (index, type, from, output shape, stride, ROI fit)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shared.yolov7.model import YoloModel


@dataclass(frozen=True)
class LayerInfo:
    """One row: ``shape`` is the output [B, C, H, W]; the head's output is a tuple
    (decoded rows [B, N, no], per-level raws [B, na, H, W, no]) described in ``shape_text``."""

    index: int
    type: str
    source: str
    shape_text: str
    channels: int
    stride: float
    parameters: int
    roi_suitable: bool
    note: str


def _roi_fit(stride: float, channels: int, is_head: bool) -> tuple[bool, str]:
    if is_head:
        return False, "head: decoded rows, not a feature map"
    if stride < 8:
        return False, "stride < 8: low-level, too fine"
    if channels > 1024:
        return True, "wide: large vectors"
    return True, f"cell = {stride:g}x{stride:g} px"


def inspect_layers(model: YoloModel, img_size: int = 640) -> list[LayerInfo]:
    """Run one forward at img_size×img_size keeping every layer and describe each."""
    side = int(img_size) // model.max_stride * model.max_stride
    x = torch.zeros(1, 3, side, side)
    with torch.inference_mode():
        features, out = model.eval().run_all_layers(x)
    rows = []
    for spec, module in zip(model.parsed.layers, model.model, strict=True):
        params = sum(p.numel() for p in module.parameters())
        is_head = spec.index == model.num_layers - 1
        if is_head:
            raws = ", ".join(str(list(r.shape)) for r in out.raws)
            shape = f"(decoded {list(out.decoded.shape)}, raws [{raws}])"
            stride = 0.0
        else:
            t = features[spec.index]
            shape = str(list(t.shape))
            stride = side / t.shape[2]
        ok, note = _roi_fit(stride, spec.c_out, is_head)
        rows.append(
            LayerInfo(
                index=spec.index,
                type=spec.module,
                source=str(spec.source_from),
                shape_text=shape,
                channels=spec.c_out,
                stride=stride,
                parameters=params,
                roi_suitable=ok,
                note=note,
            )
        )
    return rows
