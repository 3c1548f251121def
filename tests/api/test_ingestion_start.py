"""Hostile path ingestions (issue 19): FIFOs and devices, the existence oracle outside the roots."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import resources_of
from tests.api.test_ingestions import ingest_client, wait_done
from tests.factories import png_bytes

__all__ = ["ingest_client"]  # the fixture, shared with the ingestion tests


def test_a_fifo_path_is_refused_at_once_and_does_not_use_up_the_thread_pool(
    ingest_client: TestClient, tmp_path: Path
) -> None:
    """Issue 19.1: 45 path ingestions of a FIFO used up the request threads, for ever."""
    root = tmp_path / "imports"
    os.mkfifo(root / "p.jpg")
    start = time.monotonic()
    for _ in range(50):  # more than the thread pool would survive if any of them blocked
        refused = ingest_client.post("/v1/ingestions", json={"path": str(root / "p.jpg")})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "not_regular_file"
    assert time.monotonic() - start < 30
    assert ingest_client.get("/v1/ingestions").json()["page"]["total"] == 0  # nothing created
    assert ingest_client.get("/readyz").status_code in (200, 503)


def test_a_fifo_inside_an_imported_folder_fails_alone_without_blocking(
    ingest_client: TestClient, tmp_path: Path
) -> None:
    root = tmp_path / "imports"
    (root / "set").mkdir()
    (root / "set" / "x.png").write_bytes(png_bytes(32, 32, 5))
    os.mkfifo(root / "set" / "pipe.jpg")
    response = ingest_client.post("/v1/ingestions", json={"path": str(root / "set")})
    assert response.status_code == 202, response.text
    body = wait_done(ingest_client, response.json()["id"], timeout=60)
    assert body["counts"]["done"] == 1
    failed = [(f["member"], f["error_code"]) for f in body["failed_items"]]
    assert failed == [("pipe.jpg", "not_regular_file")]


def test_outside_the_roots_an_existing_and_a_missing_path_get_the_same_answer(
    ingest_client: TestClient, tmp_path: Path
) -> None:
    """Issue 19.6: /etc/passwd was 403 and /etc/nonexistent 404 (an existence oracle)."""
    root = tmp_path / "imports"
    answers = []
    for path in ("/etc/passwd", "/etc/nonexistent", str(root / ".." / "nope"), "../../etc/x"):
        refused = ingest_client.post("/v1/ingestions", json={"path": path})
        answers.append((refused.status_code, refused.json()["error"]["code"]))
    assert answers == [(403, "path_not_allowed")] * 4
    missing = ingest_client.post("/v1/ingestions", json={"path": str(root / "nope")})
    assert missing.status_code == 404  # inside the roots, existence is the caller's business


def _upload_bytes(client: TestClient) -> int:
    uploads = resources_of(client).settings.uploads_dir
    return (
        sum(p.stat().st_size for p in uploads.rglob("*") if p.is_file()) if uploads.exists() else 0
    )


def test_uploads_are_removed_once_ingested_and_on_delete(ingest_client: TestClient) -> None:
    """Issue 19.3: data/uploads/<uuid>/ stayed after the ingestion and after its DELETE."""
    baseline = _upload_bytes(ingest_client)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(3):
            archive.writestr(f"dir/{i}.png", png_bytes(40, 40, 20 + i))
    uploads = [
        [("files", ("set.zip", buffer.getvalue(), "application/zip"))],
        [("files", (f"{i}.png", png_bytes(48, 40, 30 + i), "image/png")) for i in range(2)],
        [("files", ("one.png", png_bytes(48, 40, 40), "image/png"))],
        [("files", ("notes.txt", b"not an image", "text/plain"))],
    ]
    ids = []
    for files in uploads:
        response = ingest_client.post("/v1/ingestions", files=files)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    for ingestion_id in ids:
        assert wait_done(ingest_client, ingestion_id)["status"] in {"done", "failed"}
    assert _upload_bytes(ingest_client) == baseline
    uploads_dir = resources_of(ingest_client).settings.uploads_dir
    assert not any(uploads_dir.iterdir())  # no directory left behind either
    # The originals live in the image store: the images still serve their files.
    image = ingest_client.get("/v1/images", params={"ingestion_id": ids[0]}).json()["images"][0]
    assert ingest_client.get(image["file_url"]).status_code == 200
    # Issue 19.8: sources name what was uploaded, not data/uploads/<uuid>/00001-x.png.
    sources = [
        sorted(
            i["source"]
            for i in ingest_client.get("/v1/images", params={"ingestion_id": ingestion_id}).json()[
                "images"
            ]
        )
        for ingestion_id in ids[:3]
    ]
    assert sources == [
        ["set.zip::dir/0.png", "set.zip::dir/1.png", "set.zip::dir/2.png"],
        ["0.png", "1.png"],
        ["one.png"],
    ]

    # Deleted (possibly before its chunks ran): the upload goes with it.
    response = ingest_client.post(
        "/v1/ingestions", files=[("files", ("late.png", png_bytes(40, 40, 50), "image/png"))]
    )
    assert response.status_code == 202
    deleted = ingest_client.delete(f"/v1/ingestions/{response.json()['id']}")
    assert deleted.status_code == 200, deleted.text
    assert _upload_bytes(ingest_client) == baseline
    assert not any(uploads_dir.iterdir())
