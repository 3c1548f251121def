"""shared/model_identity.py: the demo detector is named as such, with its notice."""

from __future__ import annotations

from pathlib import Path

from shared.model_identity import model_identity
from shared.yolov7.detector import DEMO_WEIGHTS


def test_demo_detector_identity_reads_classes_without_loading() -> None:
    for weights in (None, DEMO_WEIGHTS):
        identity = model_identity(weights)
        assert identity.demo and identity.class_names is not None
        assert identity.name == "bundled demo detector (demo-detector.safetensors)"
        assert identity.notice is not None
        assert f"only knows {len(identity.class_names)} generated shapes" in identity.notice
        assert identity.line().startswith(
            f"model: bundled demo detector (demo-detector.safetensors), "
            f"{len(identity.class_names)} classes (circle, "
        )


def test_other_weights_have_no_notice(yolov7_fixtures: Path) -> None:
    identity = model_identity(yolov7_fixtures / "yolov7-tiny-random.pt")
    assert not identity.demo and identity.notice is None and identity.class_names is None
    assert identity.line() == (
        "model: yolov7-tiny-random.pt, classes known once loaded; custom weights"
    )
    named = model_identity(yolov7_fixtures / "yolov7-tiny-random.pt", ["a", "b"])
    assert named.line() == "model: yolov7-tiny-random.pt, 2 classes (a, b); custom weights"
