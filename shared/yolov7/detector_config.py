"""How to load and run one :class:`~shared.yolov7.detector.Detector`: a frozen value.

The engine takes this narrow config, never the process settings: an entry point builds it
once (``Settings.detector_config()``) and hands it down; tests and benchmarks build it
directly. Unset (``None``) fields take the weights file's own serving defaults when it
records them (our ``.safetensors``), else the family's (see :meth:`Detector.load`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from shared.yolov7.errors import ConfigError

Pooling = Literal["roi_align", "multiscale"]


@dataclass(frozen=True)
class DetectorConfig:
    """Weights, input, pooling, post-processing and batching of one detector.

    ``weights``: a YOLOv7 ``.pt`` or our ``.safetensors``; None = the bundled demo detector.
    ``device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``. ``img_size``: letterbox long side
    (None: the file's, else 640, or 1280 for the stride-64 family). ``feature_layers``: the
    layers pooled and concatenated (None: the file's for roi_align, else the architecture's
    default, or the head inputs for multiscale). ``roi_fraction``: each box is pooled over its
    central fraction per side (None: the file's, else 1, the whole box). ``batch_size``: images
    per forward on CUDA; on CPU at most ``cpu_batch_size`` (measured: batching does not pay
    there, docs/engine.md). ``fuse``: fold batch norms into convolutions at load (off for a
    model that is trained further). ``torch_threads`` / ``model_streams``: the thread budget of
    the process and the batches it runs at once (:mod:`shared.compute_plan`; None: automatic).
    """

    weights: Path | None = None
    device: str = "auto"
    img_size: int | None = None
    feature_layers: tuple[int, ...] | None = None
    pooling: Pooling = "roi_align"
    roi_fraction: float | None = None
    conf_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_detections: int = 300
    batch_size: int = 8
    cpu_batch_size: int = 1
    fuse: bool = True
    torch_threads: int | None = None
    model_streams: int | None = None

    def __post_init__(self) -> None:
        if self.pooling not in ("roi_align", "multiscale"):
            raise ConfigError(f"pooling must be roi_align or multiscale, got {self.pooling!r}")
        if self.roi_fraction is not None and not 0.0 < self.roi_fraction <= 1.0:
            raise ConfigError(f"roi_fraction must be in (0, 1], got {self.roi_fraction}")

    def with_file_defaults(self, doc: dict[str, Any]) -> DetectorConfig:
        """This config with its unset fields taken from a weights file's recorded serving
        defaults (``doc``: the JSON beside our .safetensors; layers only for roi_align)."""
        layers = self.feature_layers
        if not layers and self.pooling == "roi_align" and doc.get("feature_layers"):
            layers = tuple(int(i) for i in doc["feature_layers"])
        fraction = self.roi_fraction
        if fraction is None and doc.get("roi_fraction") is not None:
            fraction = float(doc["roi_fraction"])
        return replace(
            self,
            img_size=self.img_size or doc.get("img_size"),
            feature_layers=layers,
            roi_fraction=fraction,
        )
