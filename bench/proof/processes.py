"""roisearch processes under the harness: RQ workers (supervised, restarted like systemd would)
and the API server, each a real ``python -m roisearch ...`` child with its own log file.

Configuration reaches the children only through ``ROISEARCH_*`` variables built here from the
scenario's settings (inherited ``ROISEARCH_*`` variables are dropped), and each child runs in
the scenario's directory so that no stray ``.env`` is read.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


def child_env(values: Mapping[str, object]) -> dict[str, str]:
    """The parent's environment without ROISEARCH_* variables, plus ``values`` (prefixed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROISEARCH_")}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        env[f"ROISEARCH_{key.upper()}"] = str(value)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    # Two cores shared by several processes: one BLAS/OpenMP thread each.
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class StopOnExit:
    """Something started in the background that ``stop()`` ends; leaving a ``with`` block
    stops it, whatever happened inside."""

    def __enter__(self) -> Self:
        return self

    def stop(self) -> None:
        raise NotImplementedError

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def spawn(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the harness must not reach the children
        )


def stop_process(
    proc: subprocess.Popen[bytes], timeout: float = 15, sig: int = signal.SIGTERM
) -> None:
    """Signal ``proc`` (SIGTERM unless told) and wait; SIGKILL it after ``timeout`` s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=10)


class WorkerPool(StopOnExit):
    """``n`` ``roisearch worker`` processes; any that exits is restarted (a supervisor's job).

    ``kill(pid)`` SIGKILLs one of ours; the supervisor thread starts a replacement.
    """

    def __init__(self, n: int, env: dict[str, str], cwd: Path) -> None:
        self.n = n
        self.env = env
        self.cwd = cwd
        self.procs: list[subprocess.Popen[bytes]] = []
        self.exits: list[int] = []  # exit codes of processes that ended while supervised
        self.kills = 0
        self._killed: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="worker-supervisor")
        self._spawned = 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        self._spawned += 1
        log = self.cwd / f"worker-{self._spawned}.log"
        return spawn(["roisearch", "worker"], self.env, self.cwd, log)

    def __enter__(self) -> WorkerPool:
        with self._lock:
            self.procs = [self._spawn() for _ in range(self.n)]
        self._thread.start()
        return self

    def _supervise(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                for i, proc in enumerate(self.procs):
                    code = proc.poll()
                    if code is not None:
                        if proc.pid not in self._killed:
                            self.exits.append(code)
                        self.procs[i] = self._spawn()

    @property
    def pids(self) -> set[int]:
        with self._lock:
            return {p.pid for p in self.procs if p.poll() is None}

    @property
    def unexpected_exits(self) -> int:
        return len(self.exits)

    def kill(self, pid: int) -> bool:
        """SIGKILL our worker ``pid``; False if it is not one of ours or already gone."""
        with self._lock:
            for proc in self.procs:
                if proc.pid == pid and proc.poll() is None:
                    self._killed.add(pid)
                    proc.kill()
                    self.kills += 1
                    return True
        return False

    def logs(self) -> list[Path]:
        return sorted(self.cwd.glob("worker-*.log"))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for proc in self.procs:
                stop_process(proc)


class ApiServer(StopOnExit):
    """``roisearch serve`` on a port, in the background; ``wait_ready`` polls ``/readyz``."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int, *, name: str = "api") -> None:
        self.env = env
        self.cwd = cwd
        self.port = port
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_offset = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.cwd / f"{self.name}.log"

    def start(self, *, ready_timeout: float = 300) -> float:
        """Start (again) and wait until ready; returns the seconds it took."""
        self.stop()  # never two of ours on one port
        began = time.monotonic()
        self.starts += 1
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        self.proc = spawn(
            ["roisearch", "serve", "--port", str(self.port), "--no-warm-model"],
            self.env,
            self.cwd,
            self.log,
        )
        self.wait_ready(ready_timeout)
        return time.monotonic() - began

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the API exited with {self.proc.returncode}:\n{tail}")
            try:
                response = httpx.get(self.url + "/readyz", timeout=5)
                if response.status_code == 200:
                    return
                last = response.text[:300]
            except httpx.TransportError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise RuntimeError(f"the API was not ready within {timeout:.0f} s (last: {last})")

    def log_since_start(self) -> str:
        """What the current (or last) process wrote to the log."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as fh:
            fh.seek(self._log_offset)
            return fh.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL (no shutdown hooks, no final snapshot)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=30)
