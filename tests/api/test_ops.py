"""Health, readiness, metrics and index operations."""

from __future__ import annotations

import socket
import time
import uuid

from fastapi.testclient import TestClient

from api.app import create_app
from shared.settings import Settings
from tests.api.conftest import api_settings
from tests.factories import Seeded


def test_health_and_readiness(client: TestClient, seeded: Seeded) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    deadline = time.monotonic() + 30
    while True:
        response = client.get("/readyz")
        body = response.json()
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert response.status_code == 200, body
    assert body["ready"] is True
    assert set(body["checks"]) == {"database", "redis", "model", "index"}
    assert body["checks"]["redis"]["detail"].startswith("not configured")
    assert body["checks"]["model"]["detail"].startswith("lazy")


def test_metrics(client: TestClient, seeded: Seeded) -> None:
    client.get(f"/v1/objects/{seeded.object_ids[0]}/similar")
    client.get("/v1/objects/987654")
    text = client.get("/metrics").text
    assert 'roisearch_http_request_duration_seconds_count{method="GET",' in text
    assert 'route="/v1/objects/{object_id}/similar"' in text
    assert 'route="/v1/objects/{object_id}",status="404"' in text
    assert f'roisearch_objects{{space="{seeded.space_id}"}} {len(seeded.object_ids)}.0' in text
    assert "roisearch_ingestion_items_pending 0.0" in text
    assert 'roisearch_search_duration_seconds_count{kind="object"} 1.0' in text
    assert f'roisearch_index_vectors{{space="{seeded.space_id}"}}' in text


def test_index_status_check_and_rebuild(client: TestClient, seeded: Seeded) -> None:
    status = client.get("/v1/index/status").json()
    assert [s["space_id"] for s in status["spaces"]] == [seeded.space_id]
    check = client.get("/v1/index/check", params={"space_id": seeded.space_id}).json()
    assert check["spaces"][0]["space_id"] == seeded.space_id
    assert client.get("/v1/index/status", params={"space_id": 99}).status_code == 404
    started = client.post("/v1/index/rebuild").json()
    assert started[0]["space_id"] == seeded.space_id
    resources = client.app.state.resources  # type: ignore[attr-defined]
    resources.rebuilds[seeded.space_id].join(timeout=60)
    hits = client.get(f"/v1/objects/{seeded.object_ids[0]}/similar", params={"k": 5}).json()
    assert len(hits["hits"]) == 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_readiness_checks_redis_when_configured(settings: Settings, redis_url: str) -> None:
    for url, expect_ok in ((redis_url, True), (f"redis://127.0.0.1:{free_port()}/0", False)):
        app = create_app(
            api_settings(settings, redis_url=url, queue_name=f"api-test-{uuid.uuid4().hex}"),
            warm_model=False,
        )
        with TestClient(app) as client:
            body = client.get("/readyz").json()
            assert body["checks"]["redis"]["ok"] is expect_ok, body
            if not expect_ok:
                assert client.get("/readyz").status_code == 503
                assert body["checks"]["redis"]["detail"].startswith("redis unreachable")
            assert client.get("/healthz").status_code == 200
