"""Search by a drawn box with the bundled demo detector: the same object, pasted into other
images at another scale and position (and seen in the same scene at another aspect ratio),
is found ahead of every other object.

Runs once ``shared/assets/demo-detector.safetensors`` exists (it is built by the demo tooling);
until then it is skipped with that reason. Everything else is real: the collection is ingested
through ``POST /v1/ingestions`` (embedded queue, real database, real index).
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from api.app import create_app
from shared.settings import Settings
from tests.api.conftest import API_KEY, api_settings, resources_of
from tests.conftest import YOLOV7_FIXTURES

DEMO_WEIGHTS = (
    Path(__file__).resolve().parents[2] / "shared" / "assets" / "demo-detector.safetensors"
)
# (scale, x, y) of each pasted copy, in target-image pixels
PASTES = [(0.6, 30, 200), (1.4, 250, 40), (0.8, 350, 250)]
TARGET_SIZE = (640, 480)


def png(image: PILImage.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def iou(a: dict[str, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a["x2"], b[2]) - max(a["x1"], b[0]))
    iy = max(0.0, min(a["y2"], b[3]) - max(a["y1"], b[1]))
    inter = ix * iy
    area_a = (a["x2"] - a["x1"]) * (a["y2"] - a["y1"])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter)


def background(seed: int) -> PILImage.Image:
    rng = np.random.default_rng(seed)
    w, h = TARGET_SIZE
    ramp = np.linspace(60, 190, w, dtype=np.float32)[None, :, None]
    base = np.broadcast_to(ramp, (h, w, 3)) + rng.normal(0, 6, size=(h, w, 3))
    return PILImage.fromarray(np.clip(base, 0, 255).astype(np.uint8))


@pytest.fixture
def demo_client(settings: Settings) -> Iterator[TestClient]:
    if not DEMO_WEIGHTS.is_file():
        pytest.skip(f"the demo detector {DEMO_WEIGHTS.name} has not been built yet")
    app = create_app(api_settings(settings, weights=DEMO_WEIGHTS), warm_model=False)
    with TestClient(app, headers={"X-API-Key": API_KEY}, raise_server_exceptions=False) as c:
        yield c


def wait_indexed(client: TestClient, ingestion_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while True:
        status: dict[str, Any] = client.get(f"/v1/ingestions/{ingestion_id}").json()
        if status["status"] not in {"planning", "running"}:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.3)
    assert status["status"] == "done", status
    resources_of(client).index.sync_once()
    return status


def test_drawn_box_finds_the_pasted_object_first(demo_client: TestClient) -> None:
    source = PILImage.open(YOLOV7_FIXTURES / "sample.png").convert("RGB")
    source_png = png(source)
    detected = demo_client.post(
        "/v1/search", params={"pick": "best"}, files={"image": ("s.png", source_png)}
    ).json()
    assert detected["queries"], "the demo detector finds nothing in the fixture picture"
    box = detected["queries"][0]["box"]
    patch = source.crop((box["x1"], box["y1"], box["x2"], box["y2"]))

    archive = io.BytesIO()
    pasted: dict[str, tuple[float, float, float, float]] = {}
    with zipfile.ZipFile(archive, "w") as zf:
        for i, (scale, x, y) in enumerate(PASTES):
            target = background(i)
            size = (max(8, round(patch.width * scale)), max(8, round(patch.height * scale)))
            target.paste(patch.resize(size, PILImage.Resampling.BICUBIC), (x, y))
            name = f"pasted-{i}.png"
            zf.writestr(name, png(target))
            pasted[name] = (x, y, x + size[0], y + size[1])
        # the second fixture picture is the same scene at another aspect ratio: its copy of
        # the object (within a few pixels of the same place) is a true match as well
        other = PILImage.open(YOLOV7_FIXTURES / "sample2.png").convert("RGB")
        zf.writestr("other.png", png(other))
        pasted["other.png"] = (box["x1"], box["y1"], box["x2"], box["y2"])
        # distractors: the rest of the source picture, the object masked out
        masked = source.copy()
        masked.paste(
            (128, 128, 128), (int(box["x1"]), int(box["y1"]), int(box["x2"]), int(box["y2"]))
        )
        zf.writestr("masked-source.png", png(masked))
    created = demo_client.post(
        "/v1/ingestions", files={"files": ("collection.zip", archive.getvalue())}
    ).json()
    wait_indexed(demo_client, created["id"])

    items = demo_client.get(
        f"/v1/ingestions/{created['id']}/items", params={"page_size": 20}
    ).json()["items"]
    name_of = {item["image_id"]: item["member"].rsplit("/", 1)[-1] for item in items}
    result = demo_client.post(
        "/v1/search",
        params={"k": 10},
        files={"image": ("s.png", source_png)},
        data={"boxes": f"{box['x1']},{box['y1']},{box['x2']},{box['y2']}"},
    ).json()
    hits = result["queries"][0]["hits"]
    assert hits, result

    def is_pasted(hit: dict[str, Any]) -> bool:
        name = name_of.get(hit["image_id"], "")
        return name in pasted and iou(hit["box"], pasted[name]) >= 0.3

    flags = [is_pasted(h) for h in hits]
    found = sum(flags)
    assert found >= 3, f"copies found: {found} of {len(pasted)}; hits: {hits}"
    # every copy that was found ranks ahead of every other object
    assert flags[:found] == [True] * found, flags
