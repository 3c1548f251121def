"""Reading the official-implementation references (npz storage scheme of the fixture README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

TOL_REL = 1e-4  # layers and raw logits: max|Δ| ≤ 1e-4 · max|ref|
TOL_PROB = 1e-4  # decoded obj/cls columns
TOL_BOX_PX = 0.05  # decoded box columns


class Reference:
    def __init__(self, folder: Path) -> None:
        self.npz = np.load(folder / "yolov7-tiny-reference.npz")
        self.meta: dict[str, Any] = json.loads((folder / "yolov7-tiny-layers.json").read_text())

    def has(self, key: str) -> bool:
        return key in self.npz.files or f"{key}__val" in self.npz.files

    def pick(self, key: str, full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ours, ref) at the stored positions; asserts the full shape first."""
        if key in self.npz.files:
            ref = self.npz[key]
            assert full.shape == ref.shape, (key, full.shape, ref.shape)
            return full.reshape(-1), ref.reshape(-1)
        shape = tuple(int(v) for v in self.npz[f"{key}__shape"])
        assert full.shape == shape, (key, full.shape, shape)
        idx = self.npz[f"{key}__idx"]
        return full.reshape(-1)[idx], self.npz[f"{key}__val"]

    def layer_stats(self, inp: str, i: int) -> dict[str, Any]:
        return self.meta["inputs"][inp]["layers"][i]


def max_abs_ref(stats: dict[str, Any]) -> float:
    return max(abs(stats["min"]), abs(stats["max"]))


def assert_decoded_close(ours: np.ndarray, ref: np.ndarray, columns: np.ndarray, what: str) -> None:
    """Decoded rows: box columns within 0.05 px, obj/cls within 1e-4 (columns = index % 85)."""
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    box = columns < 4
    assert diff[box].max(initial=0.0) <= TOL_BOX_PX, f"{what}: box Δ {diff[box].max()}"
    assert diff[~box].max(initial=0.0) <= TOL_PROB, f"{what}: obj/cls Δ {diff[~box].max()}"


def assert_stats_close(t: np.ndarray, stats: dict[str, Any], what: str) -> None:
    assert list(t.shape) == stats["shape"], (what, t.shape, stats["shape"])
    t64 = t.astype(np.float64)
    scale = max_abs_ref(stats)
    mean_abs = float(np.abs(t64).mean())
    assert abs(float(t64.min()) - stats["min"]) <= TOL_REL * scale, f"{what}: min"
    assert abs(float(t64.max()) - stats["max"]) <= TOL_REL * scale, f"{what}: max"
    assert abs(mean_abs - stats["mean_abs"]) <= 1e-5 * stats["mean_abs"], f"{what}: mean|x|"
    assert abs(float(t64.sum()) - stats["sum"]) <= 1e-5 * t.size * stats["mean_abs"], f"{what}: sum"
