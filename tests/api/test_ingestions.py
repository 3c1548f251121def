"""POST /v1/ingestions (upload and server-side path) in embedded mode, end to end."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared.settings import Settings
from tests.api.conftest import API_KEY, api_settings
from tests.api.seeding import png_bytes


@pytest.fixture
def ingest_client(
    settings: Settings, fixture_weights: Path, tmp_path: Path
) -> Iterator[TestClient]:
    root = tmp_path / "imports"
    root.mkdir()
    app = create_app(
        api_settings(settings, weights=fixture_weights, import_roots=[root]), warm_model=False
    )
    with TestClient(app, headers={"X-API-Key": API_KEY}, raise_server_exceptions=False) as c:
        yield c


def wait_done(client: TestClient, ingestion_id: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/v1/ingestions/{ingestion_id}").json()
        if body["status"] in {"done", "failed", "cancelled"}:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def test_upload_of_images_and_a_broken_file(ingest_client: TestClient) -> None:
    files = [
        ("files", ("a.png", png_bytes(64, 48, 1), "image/png")),
        ("files", ("b.png", png_bytes(64, 48, 2), "image/png")),
        ("files", ("notes.txt", b"this is not an image", "text/plain")),
    ]
    response = ingest_client.post("/v1/ingestions", files=files)
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["source_kind"] in {"upload", "file", "folder"}
    body = wait_done(ingest_client, created["id"])
    assert body["counts"]["done"] == 2
    assert body["counts"]["failed"] + body["counts"]["skipped"] == 1
    assert body["total_items"] == 3
    listing = ingest_client.get("/v1/images", params={"ingestion_id": created["id"]}).json()
    assert listing["page"]["total"] == 2
    image = listing["images"][0]
    assert ingest_client.get(image["file_url"]).status_code == 200


def test_upload_of_an_archive(ingest_client: TestClient) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(3):
            archive.writestr(f"dir/{i}.png", png_bytes(40, 40, 10 + i))
    response = ingest_client.post(
        "/v1/ingestions", files={"files": ("set.zip", buffer.getvalue(), "application/zip")}
    )
    assert response.status_code == 202, response.text
    body = wait_done(ingest_client, response.json()["id"])
    assert body["counts"]["done"] == 3 and body["status"] == "done"
    deleted = ingest_client.delete(f"/v1/ingestions/{body['id']}").json()
    assert deleted["deleted_images"] == 3
    assert ingest_client.get("/v1/images").json()["page"]["total"] == 0


def test_path_ingestion_is_confined_to_import_roots(
    ingest_client: TestClient, tmp_path: Path
) -> None:
    root = tmp_path / "imports"
    (root / "set").mkdir()
    (root / "set" / "x.png").write_bytes(png_bytes(32, 32, 5))
    ok = ingest_client.post("/v1/ingestions", json={"path": str(root / "set")})
    assert ok.status_code == 202, ok.text
    assert wait_done(ingest_client, ok.json()["id"])["counts"]["done"] == 1

    outside = tmp_path / "secret"
    outside.mkdir()
    for path in (str(outside), str(root / ".." / "secret"), "/etc"):
        refused = ingest_client.post("/v1/ingestions", json={"path": path})
        assert refused.status_code in {403, 404, 422}, refused.text
        assert refused.json()["error"]["message"]
    missing = ingest_client.post("/v1/ingestions", json={"path": str(root / "nope")})
    assert missing.status_code in {404, 422}


def test_bad_ingestion_requests(ingest_client: TestClient) -> None:
    assert (
        ingest_client.post(
            "/v1/ingestions", content=b"x", headers={"Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    assert ingest_client.post("/v1/ingestions", json={"nope": 1}).status_code == 422
    assert (
        ingest_client.post(
            "/v1/ingestions", content=b"{bad", headers={"Content-Type": "application/json"}
        ).status_code
        == 422
    )
    empty = ingest_client.post("/v1/ingestions", data={"other": "1"}, files={"x": ("a", b"1")})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "no_files"
    too_big = ingest_client.post(
        "/v1/ingestions", files={"files": ("big.zip", b"\0" * (5 * 1024 * 1024))}
    )
    assert too_big.status_code == 413
    assert ingest_client.get("/healthz").status_code == 200
