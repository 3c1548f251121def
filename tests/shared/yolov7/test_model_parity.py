"""Parity of our network with the official implementation's references (fixture README).

Compares every stored layer, the raw head tensors, the decoded output (sampled and top rows)
and the statistics of every layer, for the unfused and the fused model.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.yolov7.checkpoint import LoadedCheckpoint, load_pt
from shared.yolov7.fusion import fuse_model
from shared.yolov7.model import ModelOutput, YoloModel
from tests.shared.yolov7.reference_data import (
    TOL_REL,
    Reference,
    assert_decoded_close,
    assert_stats_close,
    max_abs_ref,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def reference(yolov7_fixtures: Path) -> Reference:
    return Reference(yolov7_fixtures)


@pytest.fixture(scope="module")
def checkpoint(yolov7_fixtures: Path) -> LoadedCheckpoint:
    return load_pt(yolov7_fixtures / "yolov7-tiny-random.pt")


@pytest.fixture(scope="module", params=["unfused", "fused"])
def runs(
    request: pytest.FixtureRequest, checkpoint: LoadedCheckpoint, reference: Reference
) -> dict[str, tuple[dict[int, torch.Tensor], ModelOutput]]:
    model: YoloModel = checkpoint.model
    if request.param == "fused":
        model = fuse_model(copy.deepcopy(model))  # type: ignore[assignment]
    out = {}
    with torch.inference_mode():
        for inp in ("x640", "x384", "sample"):
            key = "sample_letterbox_u8" if inp == "sample" else f"{inp}_u8"
            x = torch.from_numpy(reference.npz[key]).float() / 255.0
            out[inp] = model.run_all_layers(x)
    return out


def test_checkpoint_metadata(checkpoint: LoadedCheckpoint, reference: Reference) -> None:
    meta = reference.meta
    model = checkpoint.model
    assert checkpoint.top_level_keys == meta["ckpt_keys"]
    assert list(model.strides) == meta["stride"]
    assert model.anchors_pixels.tolist() == meta["anchor_grid_pixels"]
    assert model.head.anchors.tolist() == meta["anchors_grid_units"]
    assert list(model.parsed.save) == sorted(set(meta["save"]))
    assert sum(p.numel() for p in model.parameters()) == meta["n_params"]
    assert type(model.head).__name__ == meta["head_type"]
    assert list(model.parsed.head.inputs) == meta["head_from"]
    assert checkpoint.names[0] == "person" and len(checkpoint.names) == 80
    assert not checkpoint.fused
    bn_eps = {m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert bn_eps == {1e-3}


def test_stored_layers(runs: dict, reference: Reference) -> None:
    checked = 0
    for inp, (feats, _) in runs.items():
        for i in range(78):
            key = f"{inp}_layer{i}"
            if not reference.has(key):
                continue
            ours, ref = reference.pick(key, feats[i].numpy())
            scale = max_abs_ref(reference.layer_stats(inp, i))
            assert np.abs(ours - ref).max() <= TOL_REL * scale, key
            checked += 1
    assert checked == 9


def test_raw_head_tensors(runs: dict, reference: Reference) -> None:
    _, out = runs["x640"]
    head_stats = reference.layer_stats("x640", 77)
    for level in range(3):
        ours, ref = reference.pick(f"x640_raw{level}", out.raws[level].numpy())
        scale = max_abs_ref(head_stats["raw"][level])
        assert np.abs(ours - ref).max() <= TOL_REL * scale, level


def test_decoded_output_and_top_rows(runs: dict, reference: Reference) -> None:
    for inp in ("x640", "x384", "sample"):
        _, out = runs[inp]
        full = out.decoded.numpy()
        key = f"{inp}_out"
        ours, ref = reference.pick(key, full)
        columns = reference.npz[f"{key}__idx"] % 85
        assert_decoded_close(ours, ref, columns, key)
        top_idx = reference.npz[f"{key}__toprows_idx"]
        top = reference.npz[f"{key}__toprows"]
        for b in range(full.shape[0]):
            rows = full[b, top_idx[b]]
            cols = np.broadcast_to(np.arange(85), rows.shape)
            assert_decoded_close(rows, top[b], cols, f"{key} top rows of image {b}")


def test_statistics_of_every_layer(runs: dict, reference: Reference) -> None:
    for inp, (feats, out) in runs.items():
        for i in range(77):
            assert_stats_close(feats[i].numpy(), reference.layer_stats(inp, i), f"{inp} layer {i}")
        head = reference.layer_stats(inp, 77)
        assert_stats_close(out.decoded.numpy(), head, f"{inp} decoded")
        for level, raw in enumerate(out.raws):
            assert_stats_close(raw.numpy(), head["raw"][level], f"{inp} raw {level}")


def test_one_pass_returns_requested_features_outside_save_list(
    checkpoint: LoadedCheckpoint, reference: Reference
) -> None:
    model = checkpoint.model
    assert 71 not in model.parsed.save  # read by 72 as "previous output" only
    x = torch.from_numpy(reference.npz["x384_u8"]).float() / 255.0
    with torch.inference_mode():
        out = model(x, feature_layers=[71, 76])
    assert isinstance(out, ModelOutput)
    assert set(out.features) == {71, 76}
    assert np.abs(out.features[76].numpy() - reference.npz["x384_layer76"]).max() <= (
        TOL_REL * max_abs_ref(reference.layer_stats("x384", 76))
    )
    assert out.features[71].shape == (2, 128, 12, 20)
