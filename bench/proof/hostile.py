"""Issue 19's hostile cases in the proof battery: FIFOs and devices as sources, archive cost by
member count, stalled upload bodies, cross-site requests, foreign Host headers and the
existence oracle of path ingestion.

The bad-input section calls :func:`check_special_sources` and :func:`check_archive_cost`; the
security section calls :func:`check_hostile_requests` against its live API.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.proof.config import ALLOWED_ORIGIN, API_KEY, ProofConfig, Scenario
from bench.proof.processes import ApiServer, child_env
from bench.proof.results import Check, Report

CLI_TIMEOUT_S = 120.0


def _cli_ingest(sc: Scenario, source: Path) -> dict[str, Any]:
    """``roisearch ingest SOURCE`` in a child (embedded mode); a hang is cut at the timeout."""
    env = child_env(sc.env_values("cli", redis_url=None))
    env["COLUMNS"] = "200"
    began = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "roisearch", "ingest", str(source)],
            env=env,
            cwd=sc.root,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"exit": None, "s": CLI_TIMEOUT_S, "output": "(hung: killed at the timeout)"}
    output = (done.stdout + done.stderr).strip()
    return {"exit": done.returncode, "s": time.monotonic() - began, "output": output[-500:]}


def check_special_sources(sc: Scenario, section: str, report: Report) -> None:
    """A FIFO and /dev/zero as sources: refused at once, one line, exit 1 (hung / 24 GB before);
    a FIFO inside a folder: that member fails alone, the run finishes."""
    fifo = sc.root / "special" / "p.jpg"
    fifo.parent.mkdir(parents=True, exist_ok=True)
    if not fifo.exists():
        os.mkfifo(fifo)
    folder = sc.root / "special" / "folder"
    folder.mkdir(exist_ok=True)
    if not (folder / "pipe.jpg").exists():
        os.mkfifo(folder / "pipe.jpg")
    runs = {"fifo": _cli_ingest(sc, fifo), "/dev/zero": _cli_ingest(sc, Path("/dev/zero"))}
    refused = {
        name: run["exit"] == 1
        and "not a regular file" in run["output"]
        and len(run["output"].splitlines()) == 1
        and "Traceback" not in run["output"]
        for name, run in runs.items()
    }
    runs["folder with a fifo"] = _cli_ingest(sc, folder)
    folder_ok = runs["folder with a fifo"]["exit"] is not None
    slowest = max(run["s"] for run in runs.values())
    report.add(
        Check(
            section,
            "non-regular sources (fifo, /dev/zero, fifo in a folder)",
            f"{sum(refused.values())}/2 refused at once with one line and exit 1; folder run "
            f"{'finished' if folder_ok else 'HUNG'}; slowest {slowest:.1f} s (the CLI's start "
            "included)",
            f"refused, not_regular_file; none hung (killed at {CLI_TIMEOUT_S:.0f} s)",
            all(refused.values()) and folder_ok and slowest < CLI_TIMEOUT_S,
            {"runs": runs},
        )
    )


def check_archive_cost(config: ProofConfig, section: str, report: Report) -> None:
    """Planning + reading the same members as a folder, zip, tar and tar.gz (CPU seconds of
    this process: the wall time on a shared machine is mostly waiting for a core)."""
    from bench.archives import FORMS, build, empty_members, ingest_without_model

    n = 2_000 if config.quick else 20_000
    cpu: dict[str, dict[int, float]] = {form: {} for form in FORMS}
    with tempfile.TemporaryDirectory(prefix="proof-archives-", dir=_fast_tmp()) as tmp:
        for count in (n, 5 * n):
            for form in FORMS:
                root = Path(tmp) / f"{form}-{count}"
                root.mkdir()
                source = build(form, root, empty_members(count))
                began = time.process_time()
                _, _, read = ingest_without_model(source, root / "work", 32)
                cpu[form][count] = time.process_time() - began
                assert read == count, (form, read, count)
    ratios = {form: cpu[form][n] / max(cpu["folder"][n], 1e-9) for form in FORMS}
    growth = {form: cpu[form][5 * n] / max(cpu[form][n], 1e-9) for form in FORMS}
    report.add(
        Check(
            section,
            f"archive cost: {n:,} members vs a folder",
            ", ".join(f"{f} {ratios[f]:.2f}x" for f in FORMS if f != "folder"),
            "each <= 1.5x the folder",
            all(r <= 1.5 for r in ratios.values()),
            {"cpu_s": cpu},
        )
    )
    report.add(
        Check(
            section,
            f"archive cost: {5 * n:,} vs {n:,} members",
            ", ".join(f"{f} {growth[f]:.2f}x" for f in FORMS),
            "each <= 5x (linear)",
            all(g <= 5.0 for g in growth.values()),
            {"cpu_s": cpu},
        )
    )


def _fast_tmp() -> str | None:
    return "/dev/shm" if Path("/dev/shm").is_dir() else None


def _partial_upload(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        (
            f"POST /v1/ingestions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {API_KEY}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
            '--b\r\nContent-Disposition: form-data; name="files"; filename="a.zip"\r\n\r\n'
        ).encode()
    )
    return sock


def _answer(sock: socket.socket, timeout: float) -> tuple[int, bool]:
    """(status, closed by the server) within ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    closed = False
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except (TimeoutError, OSError):
        pass
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, closed


def check_stalled_bodies(
    api: ApiServer, stall_s: float, per_client: int, section: str, report: Report
) -> None:
    """Headers and part of a body, then nothing: 408 and closed after the stall timeout (they
    were all still open after 120 s); more bodies than the per-client bound: 429."""
    stalled = [_partial_upload(api.port) for _ in range(min(per_client, 8))]
    answers: list[tuple[int, bool]] = []

    def wait(sock: socket.socket) -> None:
        answers.append(_answer(sock, stall_s + 10))

    threads = [threading.Thread(target=wait, args=(s,)) for s in stalled]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - began
    for sock in stalled:
        sock.close()
    dropped = sum(1 for status, closed in answers if status == 408 and closed)
    held = [_partial_upload(api.port) for _ in range(per_client)]
    time.sleep(0.5)
    extra = _partial_upload(api.port)
    over, _ = _answer(extra, 3)
    for sock in [*held, extra]:
        sock.close()
    report.add(
        Check(
            section,
            "stalled upload bodies; open bodies per client",
            f"{dropped}/{len(stalled)} stalled bodies answered 408 and closed in {took:.1f} s "
            f"(timeout {stall_s:g} s); body #{per_client + 1} of one client: {over}",
            f"all 408 within timeout + 5 s; 429 past {per_client}",
            dropped == len(stalled) and took < stall_s + 5 and over == 429,
            {"answers": answers},
        )
    )


def check_cross_site(api: ApiServer, section: str, report: Report) -> None:
    """Foreign Host headers (DNS rebinding) → 400; state changes from a foreign origin → 403
    (a multipart upload with ``Origin: http://evil.example`` was answered 202 and ran)."""
    outcomes: dict[str, int] = {}
    with httpx.Client(base_url=api.url, headers={"X-API-Key": API_KEY}, timeout=30) as http:
        for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example"):
            outcomes[f"Host {host}"] = http.get("/v1/images", headers={"Host": host}).status_code
        files = {"files": ("a.png", b"not really", "image/png")}
        for origin in ("http://evil.example", "null"):
            outcomes[f"upload from {origin}"] = http.post(
                "/v1/ingestions", files=files, headers={"Origin": origin}
            ).status_code
        outcomes["DELETE from evil"] = http.delete(
            "/v1/ingestions/1", headers={"Origin": "http://evil.example"}
        ).status_code
        own = http.post("/v1/ingestions", json={"path": "/nope"}, headers={"Origin": api.url})
        listed = http.post(
            "/v1/ingestions", json={"path": "/nope"}, headers={"Origin": ALLOWED_ORIGIN}
        )
        outcomes["own origin (path outside roots)"] = own.status_code
        outcomes["CORS-listed origin (path outside roots)"] = listed.status_code
    refused_hosts = all(v == 400 for k, v in outcomes.items() if k.startswith("Host"))
    refused_sites = all(v == 403 for k, v in outcomes.items() if k.startswith(("upload", "DELETE")))
    # Same-origin and listed origins reach the route (its own 403: path_not_allowed).
    passed = own.json()["error"]["code"] == listed.json()["error"]["code"] == "path_not_allowed"
    report.add(
        Check(
            section,
            "foreign Host / cross-site state changes",
            f"hosts refused: {refused_hosts}; cross-site refused: {refused_sites}; own and "
            f"listed origins pass: {passed}",
            "400 / 403 / pass",
            refused_hosts and refused_sites and passed,
            {"status": outcomes},
        )
    )


def check_path_oracle(api: ApiServer, imports: Path, section: str, report: Report) -> None:
    """Outside the import roots an existing and a missing path get the same answer; a FIFO
    inside a root is 422 at once, 50 times over, and the API still answers."""
    fifo = imports / "oracle-pipe.jpg"
    if not fifo.exists():
        os.mkfifo(fifo)
    with httpx.Client(base_url=api.url, headers={"X-API-Key": API_KEY}, timeout=30) as http:
        answers = {}
        for path in ("/etc/passwd", "/etc/nonexistent", "/root", "/no/such/dir"):
            response = http.post("/v1/ingestions", json={"path": path})
            answers[path] = (response.status_code, response.json()["error"]["code"])
        began = time.monotonic()
        fifo_status = {
            http.post("/v1/ingestions", json={"path": str(fifo)}).status_code for _ in range(50)
        }
        fifo_s = time.monotonic() - began
        alive = http.get("/v1/ingestions").status_code == 200
    same = len(set(answers.values())) == 1
    report.add(
        Check(
            section,
            "path ingestion: existence oracle; fifo in a root",
            f"outside the roots: {sorted(set(answers.values()))}; 50 fifo paths: "
            f"{sorted(fifo_status)} in {fifo_s:.1f} s, API {'answers' if alive else 'STUCK'}",
            "one answer for all; 422, API answers",
            same and fifo_status == {422} and alive,
            {"answers": answers},
        )
    )
