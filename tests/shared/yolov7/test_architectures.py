"""Every encoded variant builds with the spec's layer/parameter/state-dict counts; P6 modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from shared.yolov7.architectures import (
    yolov7_config,
    yolov7_deploy_config,
    yolov7_tiny_config,
    yolov7_tiny_deploy_config,
)
from shared.yolov7.config import parse_config
from shared.yolov7.fusion import fuse_model
from shared.yolov7.layers import ReOrg
from shared.yolov7.model import ModelOutput, YoloModel, build_model

torch.set_num_threads(1)

# (factory, layers, parameters, state-dict tensors, default ROI layer) from spec 1.5 / 2.5 / 2.6
SPEC = [
    (yolov7_tiny_config, 78, 6_228_762, 344, 71),
    (yolov7_tiny_deploy_config, 78, 6_227_101, 338, 71),
    (yolov7_config, 106, 37_622_682, 566, 99),
    (yolov7_deploy_config, 106, 37_620_125, 560, 99),
]


@pytest.mark.parametrize(("factory", "n_layers", "n_params", "n_keys", "roi"), SPEC)
def test_counts_match_spec(
    factory: Callable[[int], dict[str, Any]], n_layers: int, n_params: int, n_keys: int, roi: int
) -> None:
    model = YoloModel(factory(80))
    assert model.num_layers == n_layers
    assert sum(p.numel() for p in model.parameters()) == n_params
    assert len(model.state_dict()) == n_keys
    assert model.default_feature_layers() == (roi,)


def test_yolov7_layer_99_and_save_list() -> None:
    parsed = parse_config(yolov7_config(80))
    assert parsed.layers[99].c_out == 256 and parsed.layers[99].stride == 32
    assert 99 not in parsed.save
    assert parsed.head.inputs == (102, 103, 104)
    assert parsed.head_strides == (8.0, 16.0, 32.0)


@pytest.mark.parametrize("factory", [yolov7_tiny_config, yolov7_config])
def test_training_forward_contract(factory: Callable[..., dict[str, Any]]) -> None:
    model = build_model(factory(nc=3, width_multiple=0.25), nc=3).train()
    raws = model(torch.rand(2, 3, 64, 96))
    assert isinstance(raws, list) and len(raws) == 3
    assert [tuple(r.shape) for r in raws] == [(2, 3, 8, 12, 8), (2, 3, 4, 6, 8), (2, 3, 2, 3, 8)]
    sum(r.sum() for r in raws).backward()  # differentiable end to end
    assert model.anchors_pixels.shape == (3, 3, 2) and model.strides == (8.0, 16.0, 32.0)
    model.eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 64, 64), feature_layers=model.default_feature_layers())
    assert isinstance(out, ModelOutput) and out.decoded.shape == (1, 3 * (64 + 16 + 4), 8)


def _p6_test_config(head: str) -> dict:
    """A small 4-level graph using every P6 module: ReOrg, DownC, Shortcut, IAuxDetect."""
    rows = [
        [-1, 1, "ReOrg", []],  # 0  s2
        [-1, 1, "Conv", [16, 3, 1]],  # 1
        [-1, 1, "DownC", [32]],  # 2  s4
        [-1, 1, "Conv", [32, 3, 2]],  # 3  s8
        [-1, 1, "DownC", [32]],  # 4  s16
        [-1, 1, "Conv", [32, 3, 2]],  # 5  s32
        [-1, 1, "DownC", [32]],  # 6  s64
        [-1, 1, "SPPCSPC", [32]],  # 7
        [-1, 1, "Conv", [32, 1, 1]],  # 8
        [[-1, -2], 1, "Shortcut", [1]],  # 9
        [3, 1, "Conv", [16, 3, 1]],  # 10 P3
        [4, 1, "Conv", [16, 3, 1]],  # 11 P4
        [5, 1, "Conv", [16, 3, 1]],  # 12 P5
        [9, 1, "Conv", [16, 3, 1]],  # 13 P6
    ]
    n_in = 4
    if head == "IAuxDetect":
        rows += [[j, 1, "Conv", [16, 3, 1]] for j in (3, 4, 5, 9)]  # 14-17 aux
        n_in = 8
    frm = list(range(10, 14)) + ([14, 15, 16, 17] if n_in == 8 else [])
    rows.append([frm, 1, head, ["nc", "anchors"]])
    anchors = [
        [19, 27, 44, 40, 38, 94],
        [96, 68, 86, 152, 180, 137],
        [140, 301, 303, 264, 238, 542],
        [436, 615, 739, 380, 925, 792],
    ]
    return {
        "nc": 2,
        "depth_multiple": 1.0,
        "width_multiple": 1.0,
        "anchors": anchors,
        "backbone": rows[:10],
        "head": rows[10:],
    }


def test_p6_modules_and_auxiliary_head() -> None:
    aux = build_model(_p6_test_config("IAuxDetect"))
    assert aux.max_stride == 64 and aux.strides == (8.0, 16.0, 32.0, 64.0)
    assert any(k.startswith("model.18.m2.") for k in aux.state_dict())
    x = torch.rand(1, 3, 128, 192)
    aux.train()
    assert len(aux(x)) == 8
    aux.eval()
    with torch.inference_mode():
        out = aux(x)
        assert isinstance(out, ModelOutput) and len(out.raws) == 4
        # auxiliary layers 14-17 are never computed in eval mode
        from shared.yolov7.model import required_layers

        assert not {14, 15, 16, 17} & required_layers(aux, [])
        fused = fuse_model(aux)(x)
    assert isinstance(fused, ModelOutput)
    assert (fused.decoded - out.decoded)[..., 4:].abs().max() <= 1e-4


def test_reorg_channel_order() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = ReOrg()(x)
    assert y[0, :, 0, 0].tolist() == [0.0, 4.0, 1.0, 5.0]  # (r0,c0), (r1,c0), (r0,c1), (r1,c1)
