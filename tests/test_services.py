"""The test session is self-sufficient: a pytest run in a subprocess whose server URLs point
at dead ports starts private PostgreSQL and Redis servers and passes; with the server binaries
missing it says in one line what to install and skips only the tests that need them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.proof.servers import free_port
from tests.conftest import REPO_ROOT
from tests.services import PG_URL_VARIABLE, REDIS_URL_VARIABLE

pytestmark = pytest.mark.slow

# One test per kind: PostgreSQL (through the pg_url fixture), Redis (redis_url), neither.
NEEDS_PG = "tests/shared/db/test_database.py::test_a_postgresql_read_cannot_write"
NEEDS_REDIS = "tests/worker/test_main.py::test_the_command_channel_stops_promptly"
NEEDS_NOTHING = "tests/shared/test_settings.py::test_defaults_are_embedded_sqlite"
# The child "uninstalls" the servers: no PostgreSQL binaries, no redis-server.
WITHOUT_BINARIES = """
import functools, sys
import bench.proof.servers as servers

def _no_postgres():
    raise servers.ServerError("PostgreSQL server binaries (initdb, postgres) not found")

servers._pg_bindir = _no_postgres
servers.RedisServer = functools.partial(servers.RedisServer, binary="/nonexistent/redis-server")
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def _pytest(*prefix: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env[PG_URL_VARIABLE] = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres"
    env[REDIS_URL_VARIABLE] = f"redis://127.0.0.1:{free_port()}/0"
    args = ["-q", "-rs", "-p", "no:cacheprovider", NEEDS_PG, NEEDS_REDIS, NEEDS_NOTHING]
    return subprocess.run(
        [sys.executable, *prefix, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dead_servers_are_replaced_by_private_ones() -> None:
    run = _pytest("-m", "pytest")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "3 passed" in output and "skipped" not in output, output
    assert "PostgreSQL did not answer" in output and "Redis did not answer" in output, output
    assert output.count("a private one runs on port") == 2, output


def test_without_the_binaries_one_line_says_what_to_install() -> None:
    run = _pytest("-c", WITHOUT_BINARIES)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "1 passed, 2 skipped" in output, output
    advice = [line for line in output.splitlines() if "not available" in line]
    assert len(advice) == 1, output
    assert "PostgreSQL and Redis" in advice[0]
    assert "apt-get install postgresql" in advice[0] and "apt-get install redis-server" in advice[0]
    # Each skip names its reason; nothing tried to connect and failed.
    assert output.count("SKIPPED") == 2 and "does not answer at" in output, output
    for symptom in ("Traceback", "OperationalError", "ConnectionError", "Connection refused"):
        assert symptom not in output, output
