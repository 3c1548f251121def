"""Private Redis and PostgreSQL servers started by the harness, and proof that we talk to them.

A stray server already listening on a port has fooled such harnesses before: the harness then
"passes" against somebody else's database. So each server here is started on a free port with
a fresh directory, and :meth:`verify` checks, over the client connection, facts only our own
process can have:

- Redis: ``INFO server`` reports our child's pid and port, ``CONFIG GET dir`` is our temporary
  directory, and a random nonce key we wrote is there.
- PostgreSQL: ``SHOW data_directory`` is our fresh cluster, ``SHOW cluster_name`` is a random
  nonce given on the command line, the pid in ``postmaster.pid`` is our child, and
  ``pg_postmaster_start_time()`` is after we started it.

PostgreSQL refuses to run as root: as root the cluster is created and run as the ``postgres``
user (``Popen(user=...)``, so the child pid is the postmaster itself); otherwise as the current
user. Binaries come from ``pg_config --bindir``, ``/usr/lib/postgresql/*/bin`` or ``PATH``.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis

from bench.proof.processes import StopOnExit, stop_process


class ServerError(RuntimeError):
    """A private server could not be started, or is not the one we started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """``redis-server`` without persistence on a free port, in its own temporary directory."""

    def __init__(self, root: Path, *, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        self.root = root
        self.dir = root / "redis"
        self.port = free_port()
        self.nonce = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if not Path(self.binary).exists():
            raise ServerError(f"redis-server not found ({self.binary}); install redis-server")
        if _port_taken(self.port):
            raise ServerError(f"port {self.port} is already taken by another server")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        log = (self.root / f"redis-{self.restarts}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-policy",
                "noeviction",
                "--protected-mode",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_ready()
        with self.client() as client:
            client.set("roisearch-proof:nonce", self.nonce)
        self.verify()

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"redis-server exited with {self.proc.returncode}; see {self.root}/redis-*.log"
                )
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise ServerError("redis-server did not answer within 20 s")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)

    def verify(self) -> dict[str, object]:
        """Prove the server on our port is the child we started; returns the evidence."""
        if self.proc is None or self.proc.poll() is not None:
            raise ServerError("our redis-server is not running")
        with self.client() as client:
            info = client.info("server")
            directory = client.config_get("dir").get("dir")
            nonce = client.get("roisearch-proof:nonce")
        evidence = {
            "pid": info.get("process_id"),
            "expected_pid": self.proc.pid,
            "port": info.get("tcp_port"),
            "dir": directory,
            "nonce_ok": nonce == self.nonce.encode(),
        }
        if (
            info.get("process_id") != self.proc.pid
            or int(info.get("tcp_port", -1)) != self.port
            or Path(str(directory)).resolve() != self.dir.resolve()
            or not evidence["nonce_ok"]
        ):
            raise ServerError(f"the Redis server on port {self.port} is not ours: {evidence}")
        return evidence

    def restart_without_persistence(self) -> None:
        """SIGKILL and start again on the same port: every key (every queued job) is gone."""
        assert self.proc is not None
        stop_process(self.proc, 5, signal.SIGKILL)
        self.restarts += 1
        deadline = time.monotonic() + 10
        while _port_taken(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.start()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 10)


def _pg_bindir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "postgres").exists():
            return candidate
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("postgres")
    if found:
        return Path(found).resolve().parent
    raise ServerError("PostgreSQL server binaries (initdb, postgres) not found")


class PostgresServer:
    """A fresh PostgreSQL cluster (``initdb``) on a free port, trust auth, superuser postgres."""

    SUPERUSER = "postgres"

    def __init__(self) -> None:
        self.bindir = _pg_bindir()
        self.port = free_port()
        self.nonce = "proof_" + secrets.token_hex(8)
        self.root = Path(tempfile.mkdtemp(prefix="roisearch-proof-pg-"))
        self.data = self.root / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at: datetime | None = None
        self.run_as: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ServerError(
                    "running as root, and PostgreSQL refuses root: create a 'postgres' user"
                ) from None
            self.run_as = "postgres"

    def _chown(self) -> None:
        if self.run_as is not None:
            user = pwd.getpwnam(self.run_as)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.root.chmod(0o700)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.SUPERUSER} dbname={database}"

    def start(self) -> None:
        if _port_taken(self.port):
            raise ServerError(f"port {self.port} is already taken by another server")
        self._chown()
        init = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            capture_output=True,
            user=self.run_as,
            check=False,
            cwd=self.root,
        )
        if init.returncode != 0:
            raise ServerError(f"initdb failed: {init.stderr.decode(errors='replace')[-2000:]}")
        log = (self.root / "postgres.log").open("wb")
        if self.run_as is not None:
            user = pwd.getpwnam(self.run_as)
            os.chown(self.root / "postgres.log", user.pw_uid, user.pw_gid)
        self.started_at = datetime.now(UTC)
        self.proc = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"cluster_name={self.nonce}",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=128MB",
                # The proof kills clients, never the server or the machine: durability against
                # power loss is not what it measures, and fsync would only slow a shared disk.
                "-c",
                "fsync=off",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self.run_as,
            cwd=self.root,
        )
        log.close()
        self._wait_ready()
        self.verify()

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.root / "postgres.log").read_text(errors="replace")[-2000:]
                raise ServerError(f"postgres exited with {self.proc.returncode}: {log}")
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise ServerError("postgres did not accept connections within 60 s")

    def verify(self) -> dict[str, object]:
        """Prove the server on our port is the cluster we initialised; returns the evidence."""
        if self.proc is None or self.proc.poll() is not None:
            raise ServerError("our postgres is not running")
        with psycopg.connect(self.dsn(), connect_timeout=5) as conn:
            data_directory = conn.execute("SHOW data_directory").fetchone()
            cluster_name = conn.execute("SHOW cluster_name").fetchone()
            start_time = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
        try:
            pid: int | None = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None  # our cluster has no running postmaster
        started = start_time[0] if start_time else None
        evidence = {
            "data_directory": data_directory[0] if data_directory else None,
            "cluster_name": cluster_name[0] if cluster_name else None,
            "postmaster_pid": pid,
            "expected_pid": self.proc.pid,
            "postmaster_start_time": started.isoformat() if started else None,
        }
        assert self.started_at is not None
        if (
            evidence["data_directory"] is None
            or Path(str(evidence["data_directory"])).resolve() != self.data.resolve()
            or evidence["cluster_name"] != self.nonce
            or evidence["postmaster_pid"] != self.proc.pid
            or started is None
            or started < self.started_at.replace(microsecond=0)
        ):
            raise ServerError(f"the PostgreSQL server on port {self.port} is not ours: {evidence}")
        return evidence

    def create_database(self, name: str) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def terminate_backends(self, database: str, application_name: str) -> list[tuple[int, str]]:
        """``pg_terminate_backend`` every busy connection of one client; (pid, state) killed.

        Busy: running a statement or idle inside an open transaction, i.e. mid-chunk.
        """
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid, state, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = %s "
                "AND state IN ('active', 'idle in transaction', "
                "'idle in transaction (aborted)')",
                (database, application_name),
            ).fetchall()
        return [(int(pid), str(state)) for pid, state, ok in rows if ok]

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 30, signal.SIGINT)  # SIGINT = fast shutdown
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateServers(StopOnExit):
    """Both servers for one proof run; a context manager that always cleans up."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.redis = RedisServer(root)
        self.postgres = PostgresServer()

    def __enter__(self) -> PrivateServers:
        try:
            self.postgres.start()
            self.redis.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.redis.stop()
        finally:
            self.postgres.stop()

    def verify(self) -> dict[str, object]:
        return {"redis": self.redis.verify(), "postgres": self.postgres.verify()}
