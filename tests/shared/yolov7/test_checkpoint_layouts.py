"""Other official layouts: the re-parameterisation notebook dict, un-stripped dicts, fused files.

Upstream code is not available (nor wanted), so these files are re-pickled from the fixture:
its pickled objects are read as inert stand-ins, then written back under the same upstream
class names (stand-in classes registered as ``models.yolo.Model`` etc. for the duration of
the test; torch.nn classes are the real ones), in the layout under test.
"""

from __future__ import annotations

import copy
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from shared.yolov7 import unpickling
from shared.yolov7.checkpoint import load_pt
from shared.yolov7.fusion import fuse_model
from shared.yolov7.model import ModelOutput
from shared.yolov7.unpickling import PickledObject

torch.set_num_threads(1)


class _Upstream:
    """Pickles as the upstream class it names, with exactly the recorded instance state."""

    def __init__(self, state: dict[str, Any]) -> None:
        self._state = state

    def __getstate__(self) -> dict[str, Any]:
        return self._state


@pytest.fixture
def fake_upstream() -> Iterator[dict[str, type]]:
    classes: dict[str, type] = {}
    added = []
    for module in ("models", "models.yolo", "models.common"):
        if module not in sys.modules:
            sys.modules[module] = types.ModuleType(module)
            added.append(module)
    yield classes
    for module in added:
        del sys.modules[module]


def _rebuild(obj: Any, classes: dict[str, type]) -> Any:
    """Stand-in tree → objects that pickle under the original global names."""
    if isinstance(obj, PickledObject):
        state = {k: _rebuild(v, classes) for k, v in obj.state.items()}
        module, name = obj.qualified_name.rsplit(".", 1)
        if module.startswith("torch.nn"):
            real = getattr(sys.modules[module], name)
            inst = real.__new__(real)
            inst.__dict__.update(state)
            return inst
        cls = classes.get(obj.qualified_name)
        if cls is None:
            cls = type(name, (_Upstream,), {"__module__": module, "__qualname__": name})
            setattr(sys.modules[module], name, cls)
            classes[obj.qualified_name] = cls
        return cls(state)
    if isinstance(obj, dict):
        return type(obj)((k, _rebuild(v, classes)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_rebuild(v, classes) for v in obj]
    return obj


def _read_fixture(folder: Path) -> dict[str, Any]:
    path = folder / "yolov7-tiny-random.pt"
    return torch.load(path, map_location="cpu", pickle_module=unpickling, weights_only=False)


def _outputs(path: Path) -> ModelOutput:
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = load_pt(path).model(x)
    assert isinstance(out, ModelOutput)
    return out


def test_notebook_layout_in_training_mode(
    yolov7_fixtures: Path, tmp_path: Path, fake_upstream: dict[str, type]
) -> None:
    ckpt = _read_fixture(yolov7_fixtures)
    model_obj = ckpt["model"]
    for obj in [model_obj, *model_obj.state["_modules"]["model"].state["_modules"].values()]:
        obj.state["training"] = True  # the notebook saves a model still in training mode
    path = tmp_path / "deploy_notebook.pt"
    torch.save(
        {
            "model": _rebuild(model_obj, fake_upstream),
            "optimizer": None,
            "training_results": None,
            "epoch": -1,
        },
        path,
    )
    loaded = load_pt(path)
    assert loaded.top_level_keys == ["model", "optimizer", "training_results", "epoch"]
    assert not loaded.model.training
    reference = _outputs(yolov7_fixtures / "yolov7-tiny-random.pt")
    assert torch.equal(_outputs(path).decoded, reference.decoded)


def test_unstripped_dict_prefers_ema(
    yolov7_fixtures: Path, tmp_path: Path, fake_upstream: dict[str, type]
) -> None:
    ckpt = _read_fixture(yolov7_fixtures)
    broken = copy.deepcopy(ckpt["model"])
    # the non-EMA model gets different weights: loading must take 'ema'
    head = broken.state["_modules"]["model"].state["_modules"]["77"]
    head.state["_modules"]["m"].state["_modules"]["0"].state["_parameters"]["bias"] += 1.0
    path = tmp_path / "last.pt"
    torch.save(
        {
            "epoch": 3,
            "model": _rebuild(broken, fake_upstream),
            "ema": _rebuild(ckpt["model"], fake_upstream),
            "updates": 10,
            "optimizer": None,
        },
        path,
    )
    reference = _outputs(yolov7_fixtures / "yolov7-tiny-random.pt")
    assert torch.equal(_outputs(path).decoded, reference.decoded)


def test_fused_checkpoint_is_recognised(
    yolov7_fixtures: Path, tmp_path: Path, fake_upstream: dict[str, type]
) -> None:
    """Conv without bn + conv.bias, IDetect folded but ia/im still present (upstream fuse())."""
    ckpt = _read_fixture(yolov7_fixtures)
    fused_state = fuse_model(load_pt(yolov7_fixtures / "yolov7-tiny-random.pt").model).state_dict()
    layers = ckpt["model"].state["_modules"]["model"].state["_modules"]
    for index, layer in layers.items():
        kids = layer.state["_modules"]
        if "bn" in kids:
            del kids["bn"]
            conv = kids["conv"].state["_parameters"]
            conv["weight"] = fused_state[f"model.{index}.conv.weight"].half()
            conv["bias"] = fused_state[f"model.{index}.conv.bias"].half()
        if index == "77":
            for i, m in kids["m"].state["_modules"].items():
                m.state["_parameters"]["weight"] = fused_state[f"model.77.m.{i}.weight"].half()
                m.state["_parameters"]["bias"] = fused_state[f"model.77.m.{i}.bias"].half()
    path = tmp_path / "fused.pt"
    torch.save({"model": _rebuild(ckpt["model"], fake_upstream)}, path)
    loaded = load_pt(path)
    assert loaded.fused
    ours = _outputs(path).decoded.numpy()
    reference = _outputs(yolov7_fixtures / "yolov7-tiny-random.pt").decoded.numpy()
    diff = np.abs(ours - reference)
    # measured: 9e-4 / 1.1 px from fp16 rounding; applying the implicits twice gives 0.73 / 600 px
    assert diff[..., 4:].max() < 5e-3 and diff[..., :4].max() < 3.0
