"""Fixtures for the API tests: a real app (real database of both backends, real index) behind
Starlette's TestClient, a seeded collection, and a live uvicorn server for socket-level tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from api.app import create_app
from api.resources import Resources
from shared.settings import Settings, load_settings
from tests.api.live_server import LiveServer
from tests.conftest import YOLOV7_FIXTURES
from tests.factories import Seeded, seed_collection

API_KEY = "test-key-123"
ALLOWED_ORIGIN = "https://allowed.example"
MiB = 1024 * 1024
YOLOV7_WEIGHTS = YOLOV7_FIXTURES / "yolov7-tiny-random.pt"

torch.set_num_threads(1)


def api_settings(base: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": base.data_dir,
        "database_url": base.database_url,
        "api_key": API_KEY,
        "cors_origins": [ALLOWED_ORIGIN],
        # TestClient's requests name the host "testserver"; live servers are on 127.0.0.1.
        "allowed_hosts": ["testserver", "127.0.0.1", "localhost"],
        "max_query_image_bytes": 2 * MiB,
        "max_upload_bytes": 4 * MiB,
        "max_k": 50,
        "max_page_size": 20,
        "index_poll_interval_s": 0.05,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return api_settings(settings)


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    app = create_app(app_settings, warm_model=False)
    with TestClient(app, headers={"X-API-Key": API_KEY}, raise_server_exceptions=False) as c:
        yield c


def resources_of(client: TestClient) -> Resources:
    resources: Resources = client.app.state.resources  # type: ignore[attr-defined]
    return resources


@pytest.fixture
def seeded(client: TestClient) -> Seeded:
    resources = resources_of(client)
    data = seed_collection(resources.settings, resources.db)
    resources.index.sync_once()
    return data


@pytest.fixture
def live_server(app_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(app_settings, warm_model=False)) as server:
        yield server


@pytest.fixture
def fixture_weights(yolov7_fixtures: Path) -> Path:
    return yolov7_fixtures / "yolov7-tiny-random.pt"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def resources_of_server(server: LiveServer) -> Resources:
    resources: Resources = server.app.state.resources
    return resources


@pytest.fixture
def model_client(settings: Settings, fixture_weights: Path) -> Iterator[TestClient]:
    """An app whose model is the random-weight yolov7-tiny fixture checkpoint."""
    app = create_app(api_settings(settings, weights=fixture_weights), warm_model=False)
    with TestClient(app, headers={"X-API-Key": API_KEY}, raise_server_exceptions=False) as c:
        yield c
