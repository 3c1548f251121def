"""The API on a database whose schema is not at head.

SQLite, fresh data directory: the server brings the schema to head and data routes answer 200
(they answered 500 "no such table" while /readyz said ok). PostgreSQL behind head: never
migrated by the server; /readyz is not ready and names ``roisearch db upgrade``, data routes
answer 503 ``schema_not_ready``, and once someone upgrades, the server serves without a restart.
"""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from shared.db import migrations
from shared.settings import load_settings
from tests.api.conftest import API_KEY

HEADERS = {"X-API-Key": API_KEY}


def test_a_fresh_sqlite_data_dir_serves_data_routes(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "new", api_key=API_KEY)
    assert settings.database_url is None  # the default: SQLite in the data directory
    with TestClient(
        create_app(settings, warm_model=False), headers=HEADERS, base_url="http://localhost"
    ) as client:
        for path in ("/v1/ingestions", "/v1/images", "/v1/index/status"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
        readiness = client.get("/readyz").json()
        assert readiness["checks"]["database"] == {"ok": True, "detail": "sqlite"}
    assert (tmp_path / "new" / "roisearch.db").is_file()


def test_postgresql_behind_head_is_not_ready_until_upgraded(
    tmp_path: Path, empty_pg_url: str
) -> None:
    migrations.upgrade(empty_pg_url, "0002")
    settings = load_settings(data_dir=tmp_path / "data", database_url=empty_pg_url, api_key=API_KEY)
    app = create_app(settings, warm_model=False)
    with TestClient(
        app, headers=HEADERS, raise_server_exceptions=False, base_url="http://localhost"
    ) as client:
        readyz = client.get("/readyz")
        assert readyz.status_code == 503
        database = readyz.json()["checks"]["database"]
        assert database["ok"] is False
        assert "roisearch db upgrade" in database["detail"] and "0002" in database["detail"]

        for path in ("/v1/ingestions", "/v1/images", "/metrics"):
            refused = client.get(path)
            assert refused.status_code == 503, (path, refused.text)
            assert refused.json()["error"]["code"] == "schema_not_ready"
            assert "roisearch db upgrade" in refused.json()["error"]["message"]
            assert refused.headers["retry-after"]
        assert client.get("/v1/images", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/healthz").status_code == 200  # alive, only not ready

        migrations.upgrade(empty_pg_url)  # what `roisearch db upgrade` does
        deadline = time.monotonic() + 30
        while (response := client.get("/v1/ingestions")).status_code == 503:
            assert time.monotonic() < deadline, response.text
            time.sleep(0.2)
        assert response.status_code == 200, response.text
        assert client.get("/readyz").json()["checks"]["database"]["ok"] is True
