"""GET /v1/model and /v1/model/layers with the fixture checkpoint."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from shared.settings import Settings
from tests.api.conftest import API_KEY, api_settings
from tests.factories import png_bytes


def test_model_and_layers(model_client: TestClient) -> None:
    model = model_client.get("/v1/model").json()
    assert model["weights"] == "yolov7-tiny-random.pt"
    assert len(model["weights_sha256"]) == 64 and len(model["space_key"]) == 64
    assert model["class_names"] and model["dim"] > 0 and model["space_id"] is None
    assert "/" not in model["weights"]

    table = model_client.get("/v1/model/layers").json()
    assert table["feature_layers"] == model["feature_layers"]
    rows = table["layers"]
    assert [r["index"] for r in rows] == list(range(len(rows)))
    pooled = [r for r in rows if r["pooled"]]
    assert [r["index"] for r in pooled] == model["feature_layers"]
    assert all(r["roi_suitable"] for r in pooled)
    assert sum(r["channels"] for r in pooled) == model["dim"]
    assert not rows[-1]["roi_suitable"]  # the detection head
    ready = model_client.get("/readyz").json()
    assert ready["checks"]["model"]["detail"] == "loaded: yolov7-tiny-random.pt"
    assert model["demo"] is False and model["notice"] is None


def test_unloadable_weights_give_503_and_readyz_says_why(
    settings: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint at all")
    app = create_app(api_settings(settings, weights=bad), warm_model=True)
    with TestClient(app, headers={"X-API-Key": API_KEY}) as client:
        response = client.get("/v1/model")
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "model_unavailable" and str(tmp_path) not in error["message"]
        deadline = time.monotonic() + 30
        while client.get("/readyz").json()["checks"]["model"]["detail"].startswith("loading"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["model"]["detail"].startswith("failed to load")
        assert str(tmp_path) not in ready.text
        query = client.post(
            "/v1/search",
            files={"image": ("q.png", png_bytes(32, 32, 0))},
            data={"boxes": "0,0,8,8"},
        )
        assert query.status_code == 503 and query.json()["error"]["code"] == "model_unavailable"
        assert client.get("/healthz").status_code == 200


def test_demo_detector_is_marked_with_a_notice(client: TestClient) -> None:
    """Issue 17 §4: the bundled detector says it is a demo model and how to use real weights."""
    model = client.get("/v1/model").json()
    assert model["demo"] is True
    notice = model["notice"]
    assert f"{len(model['class_names'])} generated shapes" in notice
    for needle in ("ROISEARCH_WEIGHTS", "yolov7.pt", "yolov7-tiny.pt", "docs/official-weights.md"):
        assert needle in notice
    assert "\n" not in notice
    ready = client.get("/readyz").json()
    assert "bundled demo detector (demo-detector.safetensors)" in ready["checks"]["model"]["detail"]
