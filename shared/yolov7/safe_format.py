"""Our pickle-free weights format: safetensors + the architecture as JSON.

``<name>.safetensors`` holds the state dict (official key names) and, in its header
metadata under ``roisearch.architecture``, the same JSON document that is also written
beside it as ``<name>.json`` (for people and tools): format tag, version, the architecture
config (the official config dict), class names, native input size, whether the weights are
already fused, and the weights hash. Loading never unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from shared.yolov7.checkpoint import LoadedCheckpoint, load_model_into
from shared.yolov7.errors import CheckpointError, ConfigError
from shared.yolov7.fusion import is_fused
from shared.yolov7.hashing import state_dict_sha256
from shared.yolov7.model import YoloModel

FORMAT = "roisearch-yolov7"
VERSION = 1
METADATA_KEY = "roisearch.architecture"


def sidecar_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def save_safe(
    model: YoloModel,
    path: Path,
    *,
    names: list[str] | None = None,
    img_size: int | None = None,
    feature_layers: list[int] | None = None,
    roi_fraction: float | None = None,
    dtype: torch.dtype = torch.float32,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``path`` (.safetensors) and its ``.json`` sidecar; returns the sidecar path.

    ``img_size``, ``feature_layers`` and ``roi_fraction`` are the file's own defaults for
    serving (its native input size; the layers whose RoIAlign vectors, concatenated, serve
    it best; the central part of each box to pool), used when the settings name none."""
    path = Path(path)
    state = {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config,
        "names": list(names if names is not None else model.names),
        "img_size": img_size,
        "feature_layers": feature_layers,
        "roi_fraction": roi_fraction,
        "fused": is_fused(model),
        "weights_sha256": state_dict_sha256(model.state_dict()),
        "extra": extra or {},
    }
    text = json.dumps(doc, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={METADATA_KEY: text})
    sidecar = sidecar_path(path)
    sidecar.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return sidecar


def read_architecture(path: Path) -> dict[str, Any]:
    """The architecture document of a .safetensors file (header metadata, else the sidecar)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file: {exc}") from None
    text = meta.get(METADATA_KEY)
    if text is None and sidecar_path(path).is_file():
        text = sidecar_path(path).read_text()
    if text is None:
        raise CheckpointError(
            f"{path}: no architecture metadata and no {sidecar_path(path).name} beside it"
        )
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: architecture JSON is invalid: {exc}") from None
    if doc.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file (format {doc.get('format')!r})")
    return dict(doc)


def load_safe(path: Path) -> tuple[LoadedCheckpoint, dict[str, Any]]:
    """Load a .safetensors written by :func:`save_safe` → (checkpoint, architecture doc)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    doc = read_architecture(path)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read tensors: {exc}") from None
    try:
        model = YoloModel(doc["config"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid architecture: {exc}") from None
    load_model_into(model, state, path, fused=bool(doc.get("fused")))
    names = doc.get("names") or model.names
    if len(names) == model.nc:
        model.names = [str(n) for n in names]
    return LoadedCheckpoint(model, model.config, model.names, bool(doc.get("fused")), path), doc


def convert(src: Path, dst: Path, *, dtype: torch.dtype = torch.float32) -> Path:
    """Official/plain ``.pt`` → ``dst`` .safetensors + JSON (safe unpickler, no upstream code)."""
    from shared.yolov7.checkpoint import load_pt

    loaded = load_pt(Path(src))
    save_safe(
        loaded.model,
        Path(dst),
        names=loaded.names,
        dtype=dtype,
        extra={"source": Path(src).name},
    )
    return Path(dst)
