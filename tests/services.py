"""PostgreSQL and Redis for the test session: the ones running, or private ones started here.

The suite uses real servers, never mocks. It looks for them on the default ports (or at
``ROISEARCH_TEST_PG_ADMIN_URL`` / ``ROISEARCH_TEST_REDIS_URL``). Where one does not answer,
the session starts a private one on a free port in a temporary directory (the proof battery's
:mod:`bench.proof.servers`, which also proves the server answering is the child it started)
when the server's binaries are installed, and stops it at the end. Where they are not
installed, the session says in one line what to install, and only the tests that need that
server are skipped, each with that reason (they are marked ``postgres`` / ``redis``, by hand
or from the fixtures they use: see :func:`needs`). Never a connection traceback.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from bench.proof.servers import PostgresServer, RedisServer, ServerError

DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL_VARIABLE = "ROISEARCH_TEST_PG_ADMIN_URL"
REDIS_URL_VARIABLE = "ROISEARCH_TEST_REDIS_URL"
PROBE_TIMEOUT_S = 2
INSTALL = {
    "postgres": "apt-get install postgresql (its server binaries: initdb, postgres)",
    "redis": "apt-get install redis-server",
}
# Fixtures that stand for a server: a test using one needs it.
FIXTURE_MARKS = {"pg_url": "postgres", "empty_pg_url": "postgres", "redis_url": "redis"}


def _pg_answers(url: str) -> bool:
    parsed = make_url(url)
    try:
        with psycopg.connect(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password,
            dbname=parsed.database or "postgres",
            connect_timeout=PROBE_TIMEOUT_S,
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _redis_answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(
            url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S
        ) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


@dataclass
class Services:
    """Where this session's servers are, which are private, and which are missing (why)."""

    pg_admin_url: str
    redis_url: str
    missing: dict[str, str] = field(default_factory=dict)  # marker name -> skip reason
    started: list[str] = field(default_factory=list)  # lines for the session header
    _postgres: PostgresServer | None = None
    _redis: RedisServer | None = None
    _root: Path | None = None

    @classmethod
    def from_environment(cls) -> Services:
        return cls(
            pg_admin_url=os.environ.get(PG_URL_VARIABLE, DEFAULT_PG_ADMIN_URL),
            redis_url=os.environ.get(REDIS_URL_VARIABLE, DEFAULT_REDIS_URL),
        )

    def _private_root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="roisearch-test-servers-"))
        return self._root

    def start(self) -> None:
        """Probe both servers; start a private one for each that does not answer."""
        if not _pg_answers(self.pg_admin_url):
            server: PostgresServer | None = None
            try:
                server = PostgresServer()  # raises at once if the binaries are not installed
                server.start()
            except ServerError as exc:
                if server is not None:
                    server.stop()
                self.missing["postgres"] = (
                    f"PostgreSQL does not answer at {self.pg_admin_url} and no private one "
                    f"could be started ({str(exc).splitlines()[0]}): {INSTALL['postgres']}"
                )
            else:
                self._postgres = server
                self.started.append(
                    f"PostgreSQL did not answer at {self.pg_admin_url}: "
                    f"a private one runs on port {server.port}"
                )
                self.pg_admin_url = server.url("postgres")
                os.environ[PG_URL_VARIABLE] = self.pg_admin_url
        if not _redis_answers(self.redis_url):
            server_r = RedisServer(self._private_root())
            try:
                server_r.start()
            except ServerError as exc:
                server_r.stop()
                self.missing["redis"] = (
                    f"Redis does not answer at {self.redis_url} and no private one could be "
                    f"started ({str(exc).splitlines()[0]}): {INSTALL['redis']}"
                )
            else:
                self._redis = server_r
                self.started.append(
                    f"Redis did not answer at {self.redis_url}: "
                    f"a private one runs on port {server_r.port}"
                )
                self.redis_url = server_r.url
                os.environ[REDIS_URL_VARIABLE] = self.redis_url

    def header(self) -> list[str]:
        """For the session header: private servers started, and one line for what is missing."""
        lines = list(self.started)
        if self.missing:
            names = " and ".join(
                {"postgres": "PostgreSQL", "redis": "Redis"}[m] for m in self.missing
            )
            install = "; ".join(INSTALL[m] for m in self.missing)
            lines.append(
                f"{names} not available, the tests that need it are skipped; to run them: {install}"
            )
        return lines

    def stop(self) -> None:
        if self._redis is not None:
            self._redis.stop()
        if self._postgres is not None:
            self._postgres.stop()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)


def needs(item: pytest.Item) -> set[str]:
    """The servers a collected test needs: its markers, plus those of the fixtures it uses
    (``db_url``/``database``/``settings`` parametrised with ``postgresql`` need PostgreSQL)."""
    names = {mark.name for mark in item.iter_markers() if mark.name in INSTALL}
    fixtures = set(getattr(item, "fixturenames", ()))
    names |= {FIXTURE_MARKS[f] for f in fixtures & FIXTURE_MARKS.keys()}
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("db_url") == "postgresql":
        names.add("postgres")
    return names


def mark_and_skip(items: list[pytest.Item], services: Services) -> None:
    """Mark each test with the servers it needs; skip it (with the reason) if one is missing."""
    for item in items:
        for name in sorted(needs(item)):
            item.add_marker(getattr(pytest.mark, name))
            if name in services.missing:
                item.add_marker(pytest.mark.skip(reason=services.missing[name]))
