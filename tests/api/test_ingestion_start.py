"""Hostile path ingestions (issue 19): FIFOs and devices, the existence oracle outside the roots."""

from __future__ import annotations

import os
import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.seeding import png_bytes
from tests.api.test_ingestions import ingest_client, wait_done

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
