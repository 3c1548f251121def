"""Our YOLOv7 engine: safe checkpoint loading, detection and ROI vectors (see docs/engine.md)."""

from shared.yolov7.architectures import yolov7_config, yolov7_tiny_config
from shared.yolov7.checkpoint import LoadedCheckpoint, load_pt
from shared.yolov7.detector import Detector, EmbeddingSpaceSpec, ImageResult
from shared.yolov7.detector_config import DetectorConfig
from shared.yolov7.errors import CheckpointError, ConfigError, EngineError, UnsafeCheckpointError
from shared.yolov7.model import ModelOutput, YoloModel, build_model
from shared.yolov7.safe_format import load_safe, save_safe

__all__ = [
    "CheckpointError",
    "ConfigError",
    "Detector",
    "DetectorConfig",
    "EmbeddingSpaceSpec",
    "EngineError",
    "ImageResult",
    "LoadedCheckpoint",
    "ModelOutput",
    "UnsafeCheckpointError",
    "YoloModel",
    "build_model",
    "load_pt",
    "load_safe",
    "save_safe",
    "yolov7_config",
    "yolov7_tiny_config",
]
