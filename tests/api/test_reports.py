"""Clustering reports through the API (embedded mode: the in-process queue runs the job)."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from shared.db.models import Report, ReportStatus
from tests.api.conftest import resources_of
from tests.factories import Collection, seed_clustered


@pytest.fixture
def collection(client: TestClient) -> Collection:
    resources = resources_of(client)
    return seed_clustered(resources.settings, resources.db)


def wait_report(client: TestClient, report_id: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/v1/reports/{report_id}").json()
        if body["status"] in {"done", "failed"}:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def error_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_report_lifecycle(client: TestClient, collection: Collection) -> None:
    response = client.post("/v1/reports/clusters", json={"k": 4, "exemplars": 3})
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] in {"queued", "running", "done"}
    assert created["params"]["k"] == 4 and created["params"]["exemplars"] == 3
    body = wait_report(client, created["id"])
    assert body["status"] == "done", body
    assert body["progress"] == 1.0
    result = body["result"]
    assert result["overall"]["objects"] == len(collection.object_ids)
    assert result["overall"]["purity"] > result["overall"]["purity_baseline"] + 0.5
    assert all(len(c["exemplars"]) == 3 for c in result["clusters"])
    groups = {frozenset(g["object_ids"]) for g in result["duplicates"]["groups"]}
    assert groups == {frozenset(p) for p in collection.duplicate_pairs}
    links = body["links"]
    assert links["html"] == f"/v1/reports/{created['id']}/html"

    html = client.get(links["html"])
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "<svg" in html.text and "data:image/jpeg;base64," in html.text
    assert "http://" not in html.text and "https://" not in html.text

    assignments_csv = client.get(links["assignments_csv"])
    assert assignments_csv.status_code == 200
    assert assignments_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(assignments_csv.text)))
    assert len(rows) == len(collection.object_ids)
    by_cluster = {c["id"]: c for c in result["clusters"]}
    for row in rows:
        assert int(row["cluster"]) in by_cluster
    for cluster in result["clusters"]:
        members = {int(r["object_id"]) for r in rows if int(r["cluster"]) == cluster["id"]}
        assert {e["object_id"] for e in cluster["exemplars"]} <= members

    parquet = client.get(links["assignments_parquet"])
    assert parquet.status_code == 200
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("object_id").to_pylist() == [int(r["object_id"]) for r in rows]

    listing = client.get("/v1/reports").json()
    assert listing["page"]["total"] == 1
    assert listing["reports"][0]["id"] == created["id"]
    assert listing["reports"][0]["result"] is None  # listings leave the bodies out
    # ... but say what tells reports apart: selection, method, sizes, duration.
    summary = listing["reports"][0]["summary"]
    assert summary["selection"] == {
        "classes": [],
        "ingestions": [],
        "min_score": None,
        "space_id": None,
    }
    assert (summary["method"], summary["per_class"], summary["k_requested"]) == ("kmeans", False, 4)
    assert summary["objects"] == len(collection.object_ids) and summary["clusters"] == 4
    assert 0 <= summary["duration_s"] < 120
    assert client.get("/v1/reports", params={"status": "failed"}).json()["page"]["total"] == 0


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"k": 500}, "k_too_large"),
    ({"classes": ["car", "zebra"]}, "unknown_class"),
    ({"ingestions": [424242]}, "ingestion_not_found"),
    ({"space_id": 99}, "space_not_found"),
    ({"min_score": 0.99}, "empty_selection"),
    ({"k": 1}, "validation_error"),
    ({"k_min": 9, "k_max": 3}, "validation_error"),
    ({"method": "density", "k": 4}, "validation_error"),
    ({"colour": "blue"}, "validation_error"),
    ({"method": "spectral"}, "validation_error"),
]


def test_bad_parameters_are_clear_422s(client: TestClient, collection: Collection) -> None:
    for body, code in BAD_REQUESTS:
        response = client.post("/v1/reports/clusters", json=body)
        assert response.status_code == 422, (body, response.text)
        error = error_of(response)
        assert error["code"] == code, (body, error)
        if code == "k_too_large":
            assert str(len(collection.object_ids)) in error["message"]
        if code == "unknown_class":
            assert "'zebra'" in error["message"]
    # Nothing was queued for a refused request.
    assert client.get("/v1/reports").json()["page"]["total"] == 0


def test_empty_collection_is_a_clear_error(client: TestClient) -> None:
    error = error_of(client.post("/v1/reports/clusters", json={}))
    assert error["code"] == "empty_selection"


def test_unknown_report_and_files_before_done(client: TestClient, collection: Collection) -> None:
    missing = client.get("/v1/reports/777")
    assert missing.status_code == 404 and error_of(missing)["code"] == "report_not_found"
    assert error_of(client.get("/v1/reports/777/html"))["code"] == "report_not_found"
    resources = resources_of(client)
    with resources.db.begin() as session:  # a report that no worker has picked up yet
        report = Report(kind="clusters", status=ReportStatus.QUEUED, params={})
        session.add(report)
        session.flush()
        report_id = report.id
    for path in ("html", "assignments.csv", "assignments.parquet"):
        response = client.get(f"/v1/reports/{report_id}/{path}")
        assert response.status_code == 409
        error = error_of(response)
        assert error["code"] == "report_not_done" and error["details"]["status"] == "queued"
    assert client.get(f"/v1/reports/{report_id}").json()["links"]["html"] is None


def test_failed_report_shows_its_code(client: TestClient, collection: Collection) -> None:
    created = client.post("/v1/reports/clusters", json={"k": 3}).json()
    wait_report(client, created["id"])
    # The data changed after the request was accepted: the job fails with a clear code.
    resources = resources_of(client)
    with resources.db.begin() as session:
        report = Report(kind="clusters", status=ReportStatus.QUEUED, params={"classes": ["nope"]})
        session.add(report)
        session.flush()
        report_id = report.id
    resources.queue.enqueue_report(report_id)
    body = wait_report(client, report_id)
    assert body["status"] == "failed"
    assert body["error_code"] == "unknown_class" and "'nope'" in body["error_message"]
    assert body["result"] is None
    summary = body["summary"]
    assert summary["selection"]["classes"] == ["nope"]
    assert summary["objects"] is None and summary["clusters"] is None
    listed = client.get("/v1/reports", params={"status": "failed"}).json()["reports"]
    assert [r["error_code"] for r in listed] == ["unknown_class"]


def test_reports_need_the_api_key(client: TestClient) -> None:
    response = client.get("/v1/reports", headers={"X-API-Key": "wrong"})
    assert response.status_code == 401
