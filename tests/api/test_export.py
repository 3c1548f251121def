"""GET /v1/export: streamed formats, split by image, clear errors."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import resources_of
from tests.factories import CLASSES, Collection, seed_clustered


@pytest.fixture
def collection(client: TestClient) -> Collection:
    resources = resources_of(client)
    return seed_clustered(resources.settings, resources.db, images=24, duplicates=0)


def error_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    return body["error"]


def test_parquet_round_trip_with_split(client: TestClient, collection: Collection) -> None:
    response = client.get("/v1/export", params={"format": "parquet", "split": "0.6,0.2,0.2"})
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(response.content)).to_pydict()
    assert table["object_id"] == sorted(collection.object_ids)
    images_of: dict[str, set[int]] = {"train": set(), "val": set(), "test": set()}
    for i, object_id in enumerate(table["object_id"]):
        vector = np.array(table["vector"][i], dtype=np.float32)
        assert vector.tobytes() == collection.vectors[object_id].astype("<f4").tobytes()
        assert table["image_id"][i] == collection.image_of[object_id]
        assert table["class_name"][i] == CLASSES[collection.class_of[object_id]]
        images_of[table["split"][i]].add(table["image_id"][i])
    assert all(images_of.values())
    assert not images_of["train"] & images_of["val"]
    assert not images_of["train"] & images_of["test"]
    assert not images_of["val"] & images_of["test"]


def test_csv_and_npy_of_one_part_line_up(client: TestClient, collection: Collection) -> None:
    params = {"split": "0.5,0.5", "seed": "3", "part": "val", "classes": "cat,dog"}
    rows = list(
        csv.DictReader(
            io.StringIO(client.get("/v1/export", params={**params, "format": "csv"}).text)
        )
    )
    response = client.get("/v1/export", params={**params, "format": "npy"})
    assert response.status_code == 200
    assert response.headers["content-disposition"].endswith('-val.npy"')
    vectors = np.load(io.BytesIO(response.content))
    assert rows and {r["split"] for r in rows} == {"val"}
    assert {r["class_name"] for r in rows} <= {"cat", "dog"}
    assert vectors.shape == (len(rows), 32)
    for row, vector in zip(rows, vectors, strict=True):
        assert np.array_equal(vector, collection.vectors[int(row["object_id"])])
    train = client.get("/v1/export", params={**params, "part": "train", "format": "csv"}).text
    train_images = {int(r["image_id"]) for r in csv.DictReader(io.StringIO(train))}
    assert train_images and not train_images & {int(r["image_id"]) for r in rows}


def test_npz_bundle(client: TestClient, collection: Collection) -> None:
    response = client.get(
        "/v1/export", params={"format": "npz", "ingestions": collection.ingestion_ids[1]}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    bundle = np.load(io.BytesIO(response.content), allow_pickle=False)
    ids = bundle["object_ids"].tolist()
    expected = [
        o
        for o in sorted(collection.object_ids)
        if collection.ingestion_of_image[collection.image_of[o]] == collection.ingestion_ids[1]
    ]
    assert ids == expected
    assert np.array_equal(bundle["vectors"], np.stack([collection.vectors[o] for o in ids]))
    assert list(bundle["class_names"]) == CLASSES


def test_bad_parameters(client: TestClient, collection: Collection) -> None:
    cases = [
        ({"classes": "zebra"}, "unknown_class"),
        ({"split": "0.8"}, "invalid_split"),
        ({"split": "a,b,c"}, "invalid_split"),
        ({"part": "train"}, "invalid_split"),
        ({"min_score": "0.99"}, "empty_selection"),
        ({"format": "xlsx"}, "validation_error"),
        ({"part": "holdout", "split": "0.5,0.5"}, "validation_error"),
    ]
    for params, code in cases:
        response = client.get("/v1/export", params=params)
        assert response.status_code == 422, (params, response.text)
        assert error_of(response)["code"] == code, params


def test_unknown_space_or_ingestion_is_404_as_on_the_index_routes(
    client: TestClient, collection: Collection
) -> None:
    """Issue 19.8: an unknown space_id was 422 here but 404 on /v1/index/status."""
    for path in ("/v1/export", "/v1/index/status"):
        response = client.get(path, params={"space_id": "77"})
        assert response.status_code == 404, (path, response.text)
        assert error_of(response)["code"] == "space_not_found"
    missing = client.get("/v1/export", params={"ingestions": "5555"})
    assert missing.status_code == 404 and error_of(missing)["code"] == "ingestion_not_found"


def test_export_needs_the_api_key(client: TestClient) -> None:
    assert client.get("/v1/export", headers={"X-API-Key": "nope"}).status_code == 401
