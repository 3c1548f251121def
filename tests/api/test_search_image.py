"""Query by uploaded image (model in the API process): boxes, detections, bad uploads.

Uses the random-weight yolov7-tiny fixture checkpoint: its vectors are deterministic, so an
object stored from an image region must come back first (score ≈ 1) when the same region is
searched for.
"""

from __future__ import annotations

import io
import time

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from api.routes.search import MAX_MODEL_WAITING
from shared.ingestion.spaces import ensure_space
from tests.api.conftest import resources_of
from tests.factories import add_image, add_object


def scene(seed: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    array = np.full((size[1], size[0], 3), 90, dtype=np.uint8)
    array[20:70, 30:100] = rng.integers(0, 255, size=(50, 70, 3), dtype=np.uint8)
    return array


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(array).save(out, format=fmt)
    return out.getvalue()


def store_regions(client: TestClient, arrays: list[np.ndarray], box: list[float]) -> list[int]:
    """Embed ``box`` of each image with the API's own model and store them as objects."""
    resources = resources_of(client)
    detector = resources.models.get()
    boxes = np.array([box], dtype=np.float32)
    results = detector.embed(arrays, [boxes] * len(arrays), detect=False)
    spec = detector.space
    ids: list[int] = []
    with resources.db.begin() as session:
        space_id = ensure_space(session, spec)
        for array, result in zip(arrays, results, strict=True):
            image_id = add_image(session, width=array.shape[1], height=array.shape[0])
            object_id = add_object(
                session,
                image_id=image_id,
                space_id=space_id,
                ordinal=0,
                box=(box[0], box[1], box[2], box[3]),
                class_id=0,
                class_name=str(spec.class_names[0]),
                score=0.9,
                vector=np.asarray(result.query_vectors[0]),
            )
            ids.append(object_id)
    resources.index.sync_once()
    return ids


def test_search_by_box_finds_the_stored_region_first(model_client: TestClient) -> None:
    arrays = [scene(seed) for seed in range(4)]
    box = [30.0, 20.0, 100.0, 70.0]
    ids = store_regions(model_client, arrays, box)
    response = model_client.post(
        "/v1/search",
        params={"k": 4},
        files={"image": ("q.png", encode(arrays[2]), "image/png")},
        data={"boxes": "30,20,100,70"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["width"] == 160 and body["height"] == 120 and body["space_id"] is not None
    [query] = body["queries"]
    assert query["source"] == "box" and query["box"] == {"x1": 30, "y1": 20, "x2": 100, "y2": 70}
    assert query["hits"][0]["object_id"] == ids[2]
    assert query["hits"][0]["score"] > 0.999
    assert len(query["hits"]) == 4

    two = model_client.post(
        "/v1/search",
        files={"image": ("q.png", encode(arrays[1]), "image/png")},
        data={"boxes": ["30,20,100,70", "0,0,50,50"]},
    ).json()
    assert [q["source"] for q in two["queries"]] == ["box", "box"]
    assert two["queries"][0]["hits"][0]["object_id"] == ids[1]


def test_search_without_boxes_returns_detections_with_neighbours(
    model_client: TestClient,
) -> None:
    arrays = [scene(seed) for seed in range(2)]
    store_regions(model_client, arrays, [30.0, 20.0, 100.0, 70.0])
    data = encode(arrays[0])
    everything = model_client.post("/v1/search", files={"image": ("q.png", data)}).json()
    for query in everything["queries"]:
        assert query["source"] == "detection" and query["class_name"]
        assert 0 <= query["box"]["x1"] < query["box"]["x2"] <= 160
        assert len(query["hits"]) <= 10
    for pick in ("central", "largest", "best"):
        picked = model_client.post(
            "/v1/search", params={"pick": pick}, files={"image": ("q.png", data)}
        ).json()
        assert len(picked["queries"]) == min(1, len(everything["queries"]))
        if picked["queries"]:
            assert picked["queries"][0]["box"] in [q["box"] for q in everything["queries"]]


def test_a_thin_strip_can_be_searched(model_client: TestClient) -> None:
    # 1 x 2000 pixels letterboxes to one row of content (the official arithmetic: none).
    strip = np.full((1, 2000, 3), 90, np.uint8)
    response = model_client.post(
        "/v1/search", files={"image": ("strip.png", encode(strip))}, data={"boxes": "0,0,500,1"}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["queries"]) == 1


def test_bad_uploads_get_clear_errors(model_client: TestClient) -> None:
    def post(data: bytes, name: str = "q.png", **form: object) -> dict[str, object]:
        response = model_client.post("/v1/search", files={"image": (name, data)}, data=form)
        assert 400 <= response.status_code < 500, response.text
        error: dict[str, object] = response.json()["error"]
        error["status"] = response.status_code
        return error

    good = encode(scene(0))
    corrupt = post(good[: len(good) // 3])
    assert "q.png" in str(corrupt["message"])
    assert post(b"%PDF-1.4 this is not an image", name="doc.pdf")["status"] in {415, 422}
    assert post(b"")["status"] in {415, 422}
    outside = post(good, boxes="100,50,200,100")
    assert outside["code"] == "box_outside_image" and "160x120" in str(outside["message"])
    assert post(good, boxes="50,50,40,60")["code"] == "box_outside_image"
    assert post(good, boxes="1,2,3")["code"] == "invalid_box"
    assert post(good, boxes="a,b,c,d")["code"] == "invalid_box"
    missing = model_client.post("/v1/search", data={"boxes": "1,2,3,4"})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "validation_error"
    assert model_client.get("/healthz").status_code == 200
    ok = model_client.post(
        "/v1/search", files={"image": ("q.png", good)}, data={"boxes": "0,0,9,9"}
    )
    assert ok.status_code == 200


def test_image_queries_are_shed_when_the_model_queue_is_full(model_client: TestClient) -> None:
    limiter = resources_of(model_client).model_limiter
    portal = model_client.portal
    assert portal is not None
    holders = [object() for _ in range(MAX_MODEL_WAITING + 1)]
    futures = [portal.start_task_soon(limiter.acquire_on_behalf_of, h) for h in holders]
    deadline = time.monotonic() + 10
    while limiter.statistics().tasks_waiting < MAX_MODEL_WAITING:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    good = encode(scene(0))
    shed = model_client.post("/v1/search", files={"image": ("q.png", good)})
    assert shed.status_code == 503 and shed.json()["error"]["code"] == "overloaded"
    assert shed.headers["retry-after"] == "1"
    for holder, future in zip(holders, futures, strict=True):
        future.result(timeout=10)
        portal.call(limiter.release_on_behalf_of, holder)
    ok = model_client.post(
        "/v1/search", files={"image": ("q.png", good)}, data={"boxes": "0,0,9,9"}
    )
    assert ok.status_code == 200
