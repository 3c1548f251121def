"""The engine's public API: detections and ROI vectors for decoded images, in one pass.

    detector = Detector.load(DetectorConfig(weights=Path("yolov7.pt")))  # None: the demo
    results = detector.embed([rgb_uint8_hwc, ...])          # list[ImageResult]
    ready = detector.prepare(rgb_uint8_hwc)                 # letterbox ahead, in any thread
    results = detector.embed([ready, ...])                  # the model's part only

Per image: letterbox (official semantics, own minimal rectangle) → images with the same
letterboxed shape are batched together (no extra padding) → one forward returns decoded
rows and the feature maps of the pooling layers → NMS in letterboxed pixels → ROI vectors
pooled over each detection (and each caller box) on the unpadded content → boxes scaled to
original pixels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from shared.yolov7.checkpoint import LoadedCheckpoint, load_pt
from shared.yolov7.detector_config import DetectorConfig, Pooling
from shared.yolov7.errors import CheckpointError, ConfigError
from shared.yolov7.fusion import fuse_model
from shared.yolov7.hashing import state_dict_sha256
from shared.yolov7.model import ModelOutput, YoloModel
from shared.yolov7.postprocessing import Detections, non_max_suppression, scale_coords
from shared.yolov7.preprocessing import Letterbox, group_by_shape, letterbox, to_chw_float
from shared.yolov7.roi_pooling import central_boxes, image_pool, level_for_boxes, roi_pool

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
DEMO_WEIGHTS = ASSETS_DIR / "demo-detector.safetensors"


@dataclass(frozen=True)
class EmbeddingSpaceSpec:
    """Identity of the vector space: vectors are comparable only within one spec.

    ``key`` is the sha256 of the canonical JSON of :meth:`as_dict`.
    """

    weights_sha256: str
    architecture: str
    layers: tuple[int, ...]
    pooling: str
    input_size: int
    dim: int
    class_names: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = list(self.layers)
        d["class_names"] = list(self.class_names)
        return d

    @property
    def key(self) -> str:
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class ImageResult:
    """Result for one image. Boxes are x1y1x2y2 float32 in original-image pixels (clipped).

    boxes [N, 4], scores float32 [N], classes int64 [N], vectors float32 [N, D] (L2-normalised),
    image_vector float32 [D], query_vectors float32 [M, D] for caller-given boxes (M = 0 if none).
    """

    width: int
    height: int
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    vectors: np.ndarray
    image_vector: np.ndarray
    query_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def visible(self) -> ImageResult:
        """The detections whose clipped box has positive width and height.

        The official post-processing keeps boxes that lie wholly in the letterbox padding;
        clipped to the picture they collapse to a line (seen with untrained weights). Parity
        with the reference needs them in ``embed``'s output; anything shown to a user or
        searched for should use this view instead.
        """
        keep = (self.boxes[:, 2] > self.boxes[:, 0]) & (self.boxes[:, 3] > self.boxes[:, 1])
        if bool(keep.all()):
            return self
        return replace(
            self,
            boxes=self.boxes[keep],
            scores=self.scores[keep],
            classes=self.classes[keep],
            vectors=self.vectors[keep],
        )


@dataclass(frozen=True)
class PreparedImage:
    """An image letterboxed for one detector's input (:meth:`Detector.prepare`).

    ``pixels``: RGB uint8 [h, w, 3] in network-input pixels (``geometry.shape``);
    ``geometry.original`` is the size of the array that was prepared, the frame of the boxes
    :meth:`Detector.embed` returns for it. ``img_size`` and ``stride``: the letterbox it was
    made for (a detector refuses another's).
    """

    pixels: np.ndarray
    geometry: Letterbox
    img_size: int
    stride: int


def architecture_id(config: dict[str, Any]) -> str:
    """Stable architecture name: known family name (if recognised) + config fingerprint."""
    rows = {k: config.get(k) for k in ("backbone", "head", "anchors", "width_multiple")}
    rows["depth_multiple"] = config.get("depth_multiple", 1.0)
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:12]
    n = len(config.get("backbone", [])) + len(config.get("head", []))
    head = config.get("head", [[None, None, "?"]])[-1][2]
    return f"yolov7-{n}L-{head}-{digest}"


def _l2(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Detector:
    """A loaded YOLOv7 detector + ROI embedder (build once per process; see module doc)."""

    def __init__(self, model: YoloModel, config: DetectorConfig, *, weights_sha256: str) -> None:
        """Serve ``model`` as ``config`` says. Unset fields: the family's defaults (input
        640, or 1280 for the stride-64 family; the default layer; the whole box);
        :meth:`load` fills them from the weights file first."""
        device, pooling = config.device, config.pooling
        feature_layers, roi_fraction = config.feature_layers, config.roi_fraction
        if roi_fraction is None:
            roi_fraction = 1.0
        img_size = config.img_size or (1280 if model.max_stride >= 64 else 640)
        self.device = _resolve_device(device)
        self.half = self.device.type == "cuda"
        if feature_layers:
            layers = tuple(int(i) for i in feature_layers)
        elif pooling == "multiscale":
            layers = tuple(model.parsed.lead_inputs)
        else:
            layers = model.default_feature_layers()
        for i in layers:
            if not 0 <= i < model.num_layers - 1 or model.layer_channels(i) <= 0:
                raise ConfigError(f"layer {i} cannot be pooled (0..{model.num_layers - 2})")
        self.class_names: list[str] = list(model.names)
        if config.fuse:
            fuse_model(model)
        self.model: YoloModel = model.eval().to(self.device)
        if self.half:
            self.model.half()
        self.layers = layers
        self.pooling: Pooling = pooling
        self.roi_fraction = float(roi_fraction)
        self.img_size = int(img_size)
        self.stride = model.max_stride
        if self.img_size % self.stride:
            raise ConfigError(f"img_size {img_size} must be a multiple of the stride {self.stride}")
        self.conf_threshold = config.conf_threshold
        self.iou_threshold = config.iou_threshold
        self.max_detections = config.max_detections
        # Measured (bench/engine.py, docs/engine.md): on CPU a batch-8 forward is no faster per
        # image than batch 1 (yolov7: ~10 % slower), so CPU runs images of a batch one by one;
        # on CUDA the whole group goes through at once.
        batch_size = config.batch_size
        self.batch_size = (
            batch_size if self.device.type == "cuda" else min(batch_size, config.cpu_batch_size)
        )
        dims = [model.layer_channels(i) for i in layers]
        self.dim = sum(dims)
        self.space = EmbeddingSpaceSpec(
            weights_sha256=weights_sha256,
            architecture=architecture_id(model.config),
            layers=layers,
            # the central fraction changes every vector, so it is part of the space's identity
            # (spelt into the pooling name so that full-box spaces keep their keys)
            pooling=pooling if roi_fraction == 1.0 else f"{pooling}:central{roi_fraction:g}",
            input_size=self.img_size,
            dim=self.dim,
            class_names=tuple(self.class_names),
        )

    # --- construction ----------------------------------------------------------------
    @classmethod
    def load(cls, config: DetectorConfig | None = None) -> Detector:
        """Load ``config.weights``: .pt (restricted unpickler) or .safetensors (+JSON); None =
        the bundled demo detector.

        Unset ``img_size``, ``feature_layers`` (with roi_align pooling) and ``roi_fraction``
        take the file's own serving defaults when it records them (our .safetensors), else
        the family's (640/1280, its default layer, the whole box)."""
        config = config or DetectorConfig()
        weights = config.weights
        if weights is None:
            weights = DEMO_WEIGHTS
            if not weights.is_file():
                raise CheckpointError(
                    f"no weights given and the bundled demo detector {weights} is absent "
                    "(build it with the demo tooling, or set ROISEARCH_WEIGHTS to a YOLOv7 "
                    ".pt/.safetensors file)"
                )
        weights = Path(weights)
        if weights.suffix == ".safetensors":
            from shared.yolov7.safe_format import load_safe

            loaded, doc = load_safe(weights)
            config = config.with_file_defaults(doc)
            sha = doc.get("weights_sha256") or state_dict_sha256(loaded.model.state_dict())
        else:
            loaded = load_pt(weights)
            sha = state_dict_sha256(loaded.model.state_dict())
        config = replace(config, fuse=config.fuse and not loaded.fused)
        return cls(loaded.model, config, weights_sha256=sha)

    @classmethod
    def from_checkpoint(
        cls, loaded: LoadedCheckpoint, config: DetectorConfig | None = None
    ) -> Detector:
        sha = state_dict_sha256(loaded.model.state_dict())
        return cls(loaded.model, config or DetectorConfig(), weights_sha256=sha)

    # --- inference ---------------------------------------------------------------------
    def prepare(self, image: np.ndarray, *, index: int = 0) -> PreparedImage:
        """Letterbox one RGB uint8 [H, W, 3] image for this detector (CPU only, thread-safe).

        What :meth:`embed` does first to every raw image; a pipeline calls it in its decode
        threads so that resizing stays off the model's path (``index`` names the image in
        errors)."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image {index}: expected an RGB HxWx3 array")
        if image.dtype != np.uint8 or min(image.shape[:2]) < 1:
            raise ValueError(f"image {index}: expected uint8 pixels, got {image.dtype}")
        pixels, geometry = letterbox(image, self.img_size, self.stride, auto=True)
        return PreparedImage(pixels, geometry, self.img_size, self.stride)

    def embed(
        self,
        images: Sequence[np.ndarray | PreparedImage],
        boxes: Sequence[np.ndarray | None] | None = None,
        *,
        detect: bool = True,
    ) -> list[ImageResult]:
        """Detect and embed. images: RGB uint8 [H, W, 3], or :meth:`prepare`'s result for
        one; boxes[i]: float [M, 4] x1y1x2y2 in original pixels of image i (or None).
        ``detect=False`` skips NMS (only caller boxes and the whole-image vector are
        returned)."""
        if boxes is not None and len(boxes) != len(images):
            raise ValueError(f"boxes has {len(boxes)} entries for {len(images)} images")
        geos: list[Letterbox] = []
        boxed: list[np.ndarray] = []
        for i, image in enumerate(images):
            if isinstance(image, PreparedImage):
                if (image.img_size, image.stride) != (self.img_size, self.stride):
                    raise ValueError(
                        f"image {i}: prepared for input size {image.img_size} / stride "
                        f"{image.stride}, this detector takes {self.img_size} / {self.stride}"
                    )
                ready = image
            else:
                ready = self.prepare(image, index=i)
            boxed.append(ready.pixels)
            geos.append(ready.geometry)
        results: list[ImageResult | None] = [None] * len(images)
        with torch.inference_mode():
            for batch in group_by_shape(geos, self.batch_size):
                x = torch.from_numpy(to_chw_float([boxed[i] for i in batch])).to(self.device)
                if self.half:
                    x = x.half()
                out = self.model(x, feature_layers=self.layers)
                assert isinstance(out, ModelOutput)
                dets = (
                    non_max_suppression(
                        out.decoded.float().cpu(),
                        self.conf_threshold,
                        self.iou_threshold,
                        self.max_detections,
                    )
                    if detect
                    else [None] * len(batch)
                )
                for b, i in enumerate(batch):
                    query = None if boxes is None else boxes[i]
                    results[i] = self._image_result(out, b, geos[i], dets[b], query)
        return [r for r in results if r is not None]

    def _pool(
        self, out: ModelOutput, b: int, geo: Letterbox, input_boxes: Tensor, as_given: bool = False
    ) -> Tensor:
        """[K, 4] network-input boxes → [K, D] normalised vectors, each box pooled over its
        central ``roi_fraction``; ``as_given``: over the boxes exactly as given (the caller
        shrank them already, or wants the whole box)."""
        h_in = geo.shape[0]
        given = input_boxes  # the level of a multi-scale vector follows the whole box's size
        if not as_given:
            input_boxes = central_boxes(input_boxes, self.roi_fraction)
        parts: list[Tensor] = []
        for i in self.layers:
            fmap = out.features[i][b]
            stride = h_in / fmap.shape[1]
            parts.append(_l2(roi_pool(fmap, input_boxes, stride, geo.content_box).cpu()))
        if self.pooling == "multiscale" and len(parts) > 1 and input_boxes.shape[0]:
            strides = [h_in / out.features[i].shape[2] for i in self.layers]
            level = level_for_boxes(given.cpu(), strides)
            parts = [p * (level == j).float().view(-1, 1) for j, p in enumerate(parts)]
        return _l2(torch.cat(parts, 1))

    def _image_result(
        self,
        out: ModelOutput,
        b: int,
        geo: Letterbox,
        det: Detections | None,
        query: np.ndarray | None,
    ) -> ImageResult:
        if det is None:
            det = Detections(
                np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
            )
        if query is not None and len(query):
            q = np.asarray(query, dtype=np.float32).reshape(-1, 4)
            query_boxes = torch.from_numpy(geo.to_input(q))
        else:
            query_boxes = torch.zeros((0, 4), dtype=torch.float32)
        if self.pooling == "roi_align":
            # One pooling pass per layer for every box of the image: objects and queries over
            # their central fraction, the image vector over the whole content box. Each box's
            # vector depends only on its own weights, so this equals pooling them separately
            # (and costs a third of the small tensor operations per image).
            k, m = len(det.boxes), len(query_boxes)
            boxes = torch.cat(
                [
                    central_boxes(torch.from_numpy(det.boxes), self.roi_fraction),
                    central_boxes(query_boxes, self.roi_fraction),
                    torch.tensor([geo.content_box], dtype=torch.float32),
                ]
            )
            pooled = self._pool(out, b, geo, boxes, as_given=True)
            return self._result(geo, det, pooled[:k], pooled[k + m], pooled[k : k + m].numpy())
        # multiscale: each box pooled at its level; the image vector concatenates every level.
        vectors = self._pool(out, b, geo, torch.from_numpy(det.boxes))
        parts = [
            _l2(
                image_pool(
                    out.features[i][b], geo.shape[0] / out.features[i].shape[2], geo.content_box
                ).cpu()
            )
            for i in self.layers
        ]
        image_vector = _l2(torch.cat(parts))
        if len(query_boxes):
            query_vectors = self._pool(out, b, geo, query_boxes).numpy()
        else:
            query_vectors = np.zeros((0, self.dim), np.float32)
        return self._result(geo, det, vectors, image_vector, query_vectors)

    def _result(
        self,
        geo: Letterbox,
        det: Detections,
        vectors: Tensor,
        image_vector: Tensor,
        query_vectors: np.ndarray,
    ) -> ImageResult:
        h0, w0 = geo.original
        return ImageResult(
            width=w0,
            height=h0,
            boxes=scale_coords(det.boxes, geo.shape, geo.original),
            scores=det.scores.astype(np.float32),
            classes=det.classes.astype(np.int64),
            vectors=vectors.numpy().astype(np.float32),
            image_vector=image_vector.numpy().astype(np.float32),
            query_vectors=query_vectors.astype(np.float32),
        )
