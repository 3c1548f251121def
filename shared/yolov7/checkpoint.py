"""Load YOLOv7 weights from official ``.pt`` files (safely) and plain state-dict files.

Official checkpoints are pickles of upstream ``Model`` objects. They are read with the
restricted unpickler of :mod:`shared.yolov7.unpickling` (no upstream code, no arbitrary
globals); the state dict and the architecture (``Model.yaml``) are extracted from the inert
stand-ins and our own :class:`~shared.yolov7.model.YoloModel` is built and loaded strictly.

Accepted top-level layouts: the ``strip_optimizer`` dict (``model`` = EMA copy, ``ema`` None),
the re-parameterisation notebook dict (``model`` only), an un-stripped training dict (``ema``
preferred when not None), and plain state dicts (``{name: tensor}``, optionally under
``model``/``state_dict``) whose architecture is given or recognised among the built-in ones.
Checkpoints saved after upstream ``fuse()`` are recognised and loaded into a fused model.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from shared.yolov7 import unpickling
from shared.yolov7.errors import CheckpointError, ConfigError, UnsafeCheckpointError
from shared.yolov7.model import YoloModel
from shared.yolov7.unpickling import PickledObject


@dataclass
class LoadedCheckpoint:
    """What a weights file yields: the built model (eval mode, fp32) and its metadata."""

    model: YoloModel
    config: dict[str, Any]
    names: list[str]
    fused: bool
    source: Path
    top_level_keys: list[str] = field(default_factory=list)


def _read_pickle(path: Path) -> Any:
    try:
        return torch.load(
            path, map_location="cpu", pickle_module=unpickling, weights_only=False, mmap=False
        )
    except UnsafeCheckpointError as exc:
        raise UnsafeCheckpointError(f"{path}: {exc}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint (truncated or corrupt?): {exc}"
        ) from None
    except Exception as exc:  # any other unpickling failure is also "not a checkpoint"
        raise CheckpointError(f"{path}: cannot be read as a checkpoint: {exc}") from None


def _module_state_dict(obj: PickledObject, prefix: str = "") -> dict[str, Tensor]:
    """Depth-first ``_parameters``, ``_buffers`` (persistent only), ``_modules``."""
    out: dict[str, Tensor] = {}
    non_persistent = obj.get("_non_persistent_buffers_set") or set()
    for name, value in (obj.get("_parameters") or {}).items():
        if value is not None:
            out[prefix + name] = value.detach()
    for name, value in (obj.get("_buffers") or {}).items():
        if value is not None and name not in non_persistent:
            out[prefix + name] = value
    for name, child in (obj.get("_modules") or {}).items():
        if isinstance(child, PickledObject):
            out.update(_module_state_dict(child, f"{prefix}{name}."))
    return out


def _walk(obj: PickledObject, prefix: str = "") -> list[tuple[str, PickledObject]]:
    found = [(prefix.rstrip("."), obj)]
    for name, child in (obj.get("_modules") or {}).items():
        if isinstance(child, PickledObject):
            found.extend(_walk(child, f"{prefix}{name}."))
    return found


def _is_fused(modules: list[tuple[str, PickledObject]]) -> bool:
    for _, obj in modules:
        if "forward" in obj.state:
            return True
        kids = obj.get("_modules") or {}
        if obj.short_name == "Conv" and kids.get("bn") is None and "conv" in kids:
            return True
        if obj.short_name == "RepConv" and kids.get("rbr_reparam") is not None:
            return True
    return False


def _apply_pickled_attributes(model: YoloModel, modules: list[tuple[str, PickledObject]]) -> None:
    """Copy BatchNorm eps and activation slopes from the pickle (they are not in the state dict)."""
    ours = dict(model.named_modules())
    for name, obj in modules:
        target = ours.get(name)
        if target is None:
            continue
        if isinstance(target, torch.nn.BatchNorm2d) and obj.get("eps") is not None:
            target.eps = float(obj.get("eps"))
        if isinstance(target, torch.nn.LeakyReLU) and obj.get("negative_slope") is not None:
            target.negative_slope = float(obj.get("negative_slope"))


def _config_from_pickle(model_obj: PickledObject, path: Path) -> dict[str, Any]:
    yaml = model_obj.get("yaml")
    if not isinstance(yaml, dict):
        raise CheckpointError(f"{path}: the pickled Model carries no architecture (yaml) dict")
    return dict(yaml)


def load_model_into(
    model: YoloModel, state: Mapping[str, Tensor], source: Path | str, fused: bool = False
) -> None:
    """Strictly load a state dict (as fp32) into ``model``, fusing its structure first if asked."""
    if fused:
        from shared.yolov7.fusion import fuse_model

        fuse_model(model)
    cleaned = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    result = model.load_state_dict(cleaned, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{source}: weights do not match the architecture: "
            f"missing {result.missing_keys[:5]} ({len(result.missing_keys)}), "
            f"unexpected {result.unexpected_keys[:5]} ({len(result.unexpected_keys)})"
        )
    model.eval()


def _plain_state_dict(obj: Any) -> dict[str, Tensor] | None:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if (
                isinstance(inner, Mapping)
                and inner
                and all(isinstance(v, Tensor) for v in inner.values())
            ):
                return dict(inner)
        if obj and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
            return dict(obj)
    return None


def load_pt(path: Path, config: dict[str, Any] | None = None) -> LoadedCheckpoint:
    """Load an official YOLOv7 ``.pt`` (or a plain state-dict ``.pt``) safely; see module doc."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    obj = _read_pickle(path)
    keys = [str(k) for k in obj] if isinstance(obj, Mapping) else []
    model_obj: Any = None
    if isinstance(obj, Mapping):
        ema = obj.get("ema")
        model_obj = ema if isinstance(ema, PickledObject) else obj.get("model")
    elif isinstance(obj, PickledObject):
        model_obj = obj
    if isinstance(model_obj, PickledObject):
        if model_obj.qualified_name != "models.yolo.Model":
            raise CheckpointError(
                f"{path}: not a YOLOv7 checkpoint (model is {model_obj.qualified_name})"
            )
        cfg = _config_from_pickle(model_obj, path)
        modules = _walk(model_obj)
        state = _module_state_dict(model_obj)
        nc = model_obj.get("nc")
        try:
            model = YoloModel(cfg, int(nc) if isinstance(nc, int) else None)
        except ConfigError as exc:
            raise CheckpointError(f"{path}: unsupported architecture: {exc}") from None
        fused = _is_fused(modules)
        load_model_into(model, state, path, fused=fused)
        _apply_pickled_attributes(model, modules)
        names = model_obj.get("names")
        if isinstance(names, list | tuple) and len(names) == model.nc:
            model.names = [str(n) for n in names]
        elif isinstance(names, Mapping):
            model.names = [str(names[k]) for k in sorted(names)]
        return LoadedCheckpoint(model, model.config, model.names, fused, path, keys)
    plain = _plain_state_dict(obj)
    if plain is None:
        raise CheckpointError(
            f"{path}: not a YOLOv7 checkpoint (no 'model' object and no state dict inside; "
            f"top-level {type(obj).__name__} with keys {keys[:8]})"
        )
    model = model_for_state_dict(plain, path, config)
    return LoadedCheckpoint(model, model.config, model.names, False, path, keys)


def model_for_state_dict(
    state: Mapping[str, Tensor], source: Path | str, config: dict[str, Any] | None = None
) -> YoloModel:
    """Build the model for a plain state dict: the given config, or a recognised built-in one."""
    from shared.yolov7.architectures import BUILTIN_CONFIGS

    candidates = [config] if config is not None else [f(80) for f in BUILTIN_CONFIGS.values()]
    for cfg in candidates:
        nc = _nc_from_state(state, cfg)
        if nc is None:
            continue
        try:
            model = YoloModel(cfg, nc)
        except ConfigError:
            continue
        ours = model.state_dict()
        if set(ours) == set(state) and all(ours[k].shape == state[k].shape for k in ours):
            load_model_into(model, state, source)
            return model
    raise CheckpointError(
        f"{source}: plain state dict does not match "
        + ("the given architecture" if config else "any built-in YOLOv7 architecture")
        + "; pass the architecture config (or use our .safetensors + JSON format)"
    )


def _nc_from_state(state: Mapping[str, Tensor], cfg: dict[str, Any]) -> int | None:
    head_index = len(cfg["backbone"]) + len(cfg["head"]) - 1
    weight = state.get(f"model.{head_index}.m.0.weight")
    if weight is None:
        return None
    na = len(cfg["anchors"][0]) // 2
    no = weight.shape[0] // na
    return int(no - 5) if no > 5 else None
