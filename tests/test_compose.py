"""docker-compose.yml parses and wires the services (no docker engine runs in CI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_services_present_and_wired() -> None:
    services = _compose()["services"]
    assert {"redis", "postgres", "migrate", "api", "worker"} <= set(services)
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
        env = services[name]["environment"]
        assert env["ROISEARCH_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["ROISEARCH_REDIS_URL"].startswith("redis://")
        # The api is reached by its service name: its Host guard must answer to it.
        assert "api" in env["ROISEARCH_ALLOWED_HOSTS"].split(",")
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["roisearch", "db", "upgrade"]


def test_redis_is_durable_and_never_evicts() -> None:
    command = _compose()["services"]["redis"]["command"]
    assert "--appendonly" in command and command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_worker_scales_and_reserves_a_gpu() -> None:
    worker = _compose()["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N works
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_dockerfile_installs_pinned_torch_before_the_project() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.index('"torch==2.13.0"') < text.index("RUN pip install .")


def test_two_api_replicas_answer_behind_one_address() -> None:
    services = _compose()["services"]
    api, gateway = services["api"], services["gateway"]
    assert api["deploy"]["replicas"] == 2
    assert "ports" not in api and "container_name" not in api  # replicas cannot clash
    assert gateway["ports"] == ["8000:8000"]
    assert gateway["depends_on"]["api"]["condition"] == "service_healthy"
    source, target, _ = gateway["volumes"][0].split(":")
    assert target == "/etc/nginx/conf.d/default.conf"
    conf = (ROOT / source).read_text()
    assert "server api:8000" in conf and "listen 8000;" in conf
    assert "proxy_pass http://roisearch_api;" in conf
    # Every replica sees the same data volume (snapshots, vector file, image store).
    assert "roisearch-data:/data" in api["volumes"]
    assert "roisearch-data:/data" in services["worker"]["volumes"]
