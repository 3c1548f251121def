"""OpenAPI-driven fuzzing (schemathesis) against a live server: no request may cause a 5xx.

Bounded: a few examples per operation, on SQLite with a small seeded collection. DELETE
operations are fuzzed too (they may delete seeded rows; every later answer must still be < 500).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from api.app import create_app
from shared.db import migrations
from shared.settings import load_settings
from tests.api.conftest import API_KEY, YOLOV7_WEIGHTS, api_settings
from tests.api.live_server import LiveServer
from tests.factories import seed_collection


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{root / 'roisearch.db'}"
    migrations.upgrade(url)
    base = load_settings(data_dir=root / "data", database_url=url)
    weights = YOLOV7_WEIGHTS if YOLOV7_WEIGHTS.is_file() else None
    settings = api_settings(base, weights=weights, max_concurrent_searches=1000)
    with LiveServer(create_app(settings, warm_model=False)) as server:
        resources = server.app.state.resources
        seed_collection(settings, resources.db)
        resources.index.sync_once()
        yield server


# The OpenAPI document does not need the app's resources: build it without a lifespan.
schema = schemathesis.openapi.from_dict(
    create_app(load_settings(api_key=API_KEY), warm_model=False).openapi()
)


@schema.parametrize()
@hypothesis.settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_server_errors(case: schemathesis.Case, fuzz_server: LiveServer) -> None:
    response = case.call(base_url=fuzz_server.url, headers={"X-API-Key": API_KEY}, timeout=60)
    case.validate_response(response, checks=[not_a_server_error])
