"""POST /v1/ingestions (upload and server-side path) in embedded mode, end to end."""

from __future__ import annotations

import io
import subprocess
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

import api.resources
from api.app import create_app
from shared.db.database import Database
from shared.db.models import Ingestion, IngestionStatus
from shared.ingestion.leases import owner_id
from shared.ingestion.supervisor import IngestionSupervisor
from shared.settings import Settings
from tests.api.conftest import API_KEY, api_settings
from tests.factories import png_bytes
from tests.shared.ingestion.scenarios import (
    item_outcomes,
    plan_in_a_killed_process,
    run_in_a_killed_process,
)


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


def test_detail_lists_skipped_items_with_their_codes_beside_failed_ones(
    ingest_client: TestClient,
) -> None:
    whole = png_bytes(64, 48, 3)
    files = [
        ("files", ("a.png", png_bytes(64, 48, 1), "image/png")),
        ("files", ("cut.png", whole[: len(whole) // 2], "image/png")),
        ("files", ("notes.txt", b"holiday photos", "text/plain")),
        ("files", ("empty.jpg", b"", "image/jpeg")),
    ]
    response = ingest_client.post("/v1/ingestions", files=files)
    assert response.status_code == 202, response.text
    body = wait_done(ingest_client, response.json()["id"])
    assert body["counts"] == {"pending": 0, "done": 1, "failed": 1, "skipped": 2}
    assert [i["member"] for i in body["failed_items"]] == ["00001-cut.png"]
    assert body["skipped_page"] == {"page": 1, "page_size": 20, "total": 2}
    skipped = [(i["member"], i["status"], i["error_code"]) for i in body["skipped_items"]]
    assert skipped == [
        ("00002-notes.txt", "skipped", "not_an_image"),
        ("00003-empty.jpg", "skipped", "empty_file"),
    ]
    assert all(i["member"] in i["error_message"] for i in body["skipped_items"])

    # page/page_size page the skipped items as they page the failed ones
    second = ingest_client.get(
        f"/v1/ingestions/{body['id']}", params={"page": 2, "page_size": 1}
    ).json()
    assert [i["member"] for i in second["skipped_items"]] == ["00003-empty.jpg"]
    assert second["skipped_page"] == {"page": 2, "page_size": 1, "total": 2}
    assert second["failed_items"] == [] and second["failed_page"]["total"] == 1


def test_restarted_api_finishes_an_upload_whose_planning_was_killed(
    settings: Settings, fixture_weights: Path
) -> None:
    app_settings = api_settings(settings, weights=fixture_weights, chunk_size=4)
    upload = app_settings.uploads_dir / "killed-mid-planning"
    upload.mkdir(parents=True)
    for i in range(9):
        (upload / f"{i}.png").write_bytes(png_bytes(40, 30, 20 + i))
    (upload / "notes.txt").write_text("not an image")
    # An API SIGKILLed after planning 5 of the 10 files: the ingestion is left `planning`,
    # leased to a process that no longer exists.
    ingestion_id = plan_in_a_killed_process(app_settings, upload)
    db = Database.from_url(app_settings.resolved_database_url)
    try:
        with db.read() as session:
            left = session.get_one(Ingestion, ingestion_id)
            assert left.status == IngestionStatus.PLANNING and left.lease_owner is not None
    finally:
        db.dispose()

    app = create_app(app_settings, warm_model=False)  # the restart (embedded mode: no Redis)
    with TestClient(app, headers={"X-API-Key": API_KEY}, raise_server_exceptions=False) as c:
        body = wait_done(c, ingestion_id)
    assert body["status"] == "done", body
    assert body["total_items"] == 10
    assert body["counts"] == {"pending": 0, "done": 9, "failed": 0, "skipped": 1}


def upload_folder(settings: Settings, name: str, images: int, seed: int) -> Path:
    upload = settings.uploads_dir / name
    upload.mkdir(parents=True)
    for i in range(images):
        (upload / f"{i}.png").write_bytes(png_bytes(40, 30, seed + i))
    (upload / "notes.txt").write_text("not an image")
    return upload


def lease_of(settings: Settings, ingestion_id: int) -> tuple[str, str | None]:
    db = Database.from_url(settings.resolved_database_url)
    try:
        with db.read() as session:
            row = session.get_one(Ingestion, ingestion_id)
            return row.status, row.lease_owner
    finally:
        db.dispose()


def test_restarted_api_finishes_an_ingestion_it_was_running_when_killed(
    settings: Settings, fixture_weights: Path
) -> None:
    app_settings = api_settings(settings, weights=fixture_weights, chunk_size=4)
    upload = upload_folder(app_settings, "killed-mid-processing", 9, 40)
    # An API SIGKILLed while its in-process queue held the planned chunks: `running`, every
    # item pending, leased to a process that no longer exists. No reconciler in embedded mode.
    ingestion_id = run_in_a_killed_process(app_settings, upload)
    status, owner = lease_of(app_settings, ingestion_id)
    assert status == IngestionStatus.RUNNING and owner is not None

    app = create_app(app_settings, warm_model=False)  # the restart (embedded mode: no Redis)
    with TestClient(app, headers={"X-API-Key": API_KEY}, raise_server_exceptions=False) as c:
        body = wait_done(c, ingestion_id)
    assert body["status"] == "done", body
    assert body["counts"] == {"pending": 0, "done": 9, "failed": 0, "skipped": 1}
    assert lease_of(app_settings, ingestion_id) == ("done", None)  # released once run


def test_api_leaves_alone_an_ingestion_whose_driver_is_alive(
    settings: Settings, fixture_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.resources, "REPLAN_INTERVAL_S", 0.2)
    app_settings = api_settings(settings, weights=fixture_weights, chunk_size=4)
    orphan = run_in_a_killed_process(app_settings, upload_folder(app_settings, "orphan", 5, 60))
    db = Database.from_url(app_settings.resolved_database_url)
    driver = subprocess.Popen(["sleep", "600"])
    try:
        busy = IngestionSupervisor(db, app_settings.ingestion_config()).start(
            upload_folder(app_settings, "busy", 5, 70)
        )
        # Run by another live process on this host (a `roisearch ingest` on the same database),
        # as far as its lease says, with a heartbeat an hour old: alive all the same.
        with db.begin() as session:
            session.execute(
                update(Ingestion)
                .where(Ingestion.id == busy.ingestion_id)
                .values(
                    lease_owner=owner_id(driver.pid),
                    updated_at=datetime.now(UTC) - timedelta(hours=1),
                )
            )
        app = create_app(app_settings, warm_model=False)
        with TestClient(app, headers={"X-API-Key": API_KEY}, raise_server_exceptions=False) as c:
            # The pass that queued the orphan saw the live one too, as did those while the
            # orphan ran: untouched.
            assert wait_done(c, orphan)["status"] == "done"
            assert lease_of(app_settings, busy.ingestion_id) == ("running", owner_id(driver.pid))
            assert {s for s, _ in item_outcomes(db, busy.ingestion_id).values()} == {"pending"}
            # Its driver dies: the next pass takes it over and finishes it.
            driver.kill()
            driver.wait()
            body = wait_done(c, busy.ingestion_id)
        assert body["counts"] == {"pending": 0, "done": 5, "failed": 0, "skipped": 1}
    finally:
        driver.kill()
        driver.wait()
        db.dispose()


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
    nul = ingest_client.post("/v1/ingestions", json={"path": "set\x00/../../secret"})
    assert nul.status_code == 422, nul.text  # was an unhandled ValueError (HTTP 500)
    assert nul.json()["error"]["code"] == "invalid_path"


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
