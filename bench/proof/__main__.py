"""``python -m bench.proof [--quick]``: the whole battery, one table, one JSON file.

Starts a private PostgreSQL cluster and Redis server (and proves it talks to them), then runs
the sections in order — bad input, security, faults, load, performance — each scenario in its
own database, data directory and queue. A scenario that cannot finish is a failed row, never
a silent gap. Exit status 1 when any check fails.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from bench.proof import badinput, faults, load, security, summary
from bench.proof.config import REPO_ROOT, ProofConfig
from bench.proof.load import LoadFigures
from bench.proof.results import Check, Report, environment
from bench.proof.servers import PostgresServer, PrivateServers, RedisServer, ServerError

SECTIONS = ("servers", "bad input", "security", "faults", "load", "performance")


def stray_server_refused(servers: PrivateServers, root: Path) -> Check:
    """The verification must fail when the server on the port is not the child we started.

    Simulated exactly as it happens: our own server "failed to start" (a placeholder process
    stands in for it) while another server answers on the port.
    """
    placeholder = subprocess.Popen(["sleep", "60"])
    refused: list[str] = []
    try:
        redis = RedisServer(root / "stray-redis")
        redis.port, redis.proc, redis.nonce = servers.redis.port, placeholder, servers.redis.nonce
        postgres = PostgresServer.__new__(PostgresServer)
        postgres.port, postgres.proc = servers.postgres.port, placeholder
        postgres.data, postgres.nonce = root / "not-our-cluster", servers.postgres.nonce
        postgres.started_at = servers.postgres.started_at
        for name, server in (("redis", redis), ("postgres", postgres)):
            try:
                server.verify()
            except ServerError:
                refused.append(name)
    finally:
        placeholder.kill()
        placeholder.wait()
    return Check(
        "servers",
        "a stray server on the port is detected",
        f"refused: {', '.join(refused) or 'none'}",
        "redis and postgres refused",
        refused == ["redis", "postgres"],
    )


def run_servers_section(servers: PrivateServers, root: Path, report: Report) -> None:
    evidence = servers.verify()
    pg = evidence["postgres"]
    rd = evidence["redis"]
    assert isinstance(pg, dict) and isinstance(rd, dict)
    report.add(
        Check(
            "servers",
            "talking to the servers the harness started",
            f"postgres pid {pg['postmaster_pid']} on :{servers.postgres.port} "
            f"({pg['cluster_name']}, {pg['data_directory']}); redis pid {rd['pid']} on "
            f":{servers.redis.port} ({rd['dir']})",
            "pid, data dir and nonce match",
            True,
            evidence,
        )
    )
    report.add(stray_server_refused(servers, root))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proof", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short battery (~5 min)")
    parser.add_argument("--results", type=Path, default=None, help="where to write the JSON")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=None)
    parser.add_argument("--weights", type=Path, default=None, help="detector weights")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)

    # A terminated harness must still stop its servers and children (the context managers).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config = ProofConfig.build(quick=args.quick, weights=args.weights)
    mode = "quick" if args.quick else "full"
    results = args.results or REPO_ROOT / "bench" / "results" / f"proof-{mode}.json"
    root = Path(tempfile.mkdtemp(prefix="roisearch-proof-"))
    logging.basicConfig(
        filename=root / "harness.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    console = Console(width=200)
    report = Report(quick=args.quick)
    report.environment = environment() | {
        "weights": str(config.weights),
        "img_size": config.img_size,
        "scratch": str(root),
    }
    wanted = set(args.only or SECTIONS)
    console.print(
        f"[bold]roisearch proof ({mode})[/bold]: scratch {root}, weights {config.weights}"
    )
    figures: LoadFigures | None = None
    began = time.monotonic()
    with PrivateServers(root) as servers:

        def section(name: str, steps: Sequence[tuple[str, Callable[[], object]]]) -> None:
            if name not in wanted:
                return
            started = time.monotonic()
            for label, step in steps:
                console.print(f"  {name}: {label} ...")
                step_began = time.monotonic()
                try:
                    servers.verify()  # still our servers, before every scenario
                    step()
                except Exception as exc:
                    report.error(name, label, exc)
                report.timings_s[f"{name}/{label}"] = time.monotonic() - step_began
            report.timings_s[name] = time.monotonic() - started

        def run_load() -> None:
            nonlocal figures
            figures = load.run(config, servers, root, report)

        section("servers", [("verification", lambda: run_servers_section(servers, root, report))])
        section("bad input", [("corpora", lambda: badinput.run(config, servers, root, report))])
        section("security", [("API", lambda: security.run(config, servers, root, report))])
        section(
            "faults",
            [
                (label, lambda fn=fn: fn(config, servers, root, report))  # type: ignore[misc]
                for label, fn in faults.SCENARIOS.items()
            ],
        )
        section("load", [("search under load", run_load)])
        section(
            "performance",
            [
                ("engine and ingestion", lambda: summary.ingestion_ratio(config, root, report)),
                ("index and API", lambda: summary.index_and_api(figures, report)),
            ]
            # bench.engine at 640 costs minutes on two busy cores: the full battery only.
            + (
                []
                if config.quick
                else [("engine at 640", lambda: summary.engine_ratio(config, report))]
            ),
        )
        if "servers" in wanted:
            try:
                servers.verify()
                report.add(Check("servers", "still our servers at the end", "verified", "", True))
            except ServerError as exc:
                report.add(Check("servers", "still our servers at the end", str(exc), "", False))
    report.timings_s["total"] = time.monotonic() - began
    report.print(console)
    report.write(results)
    console.print(f"results: {results}")
    if args.keep or report.failed:
        console.print(f"scratch directory (logs of every process) kept: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    console.print(f"finished {datetime.now(UTC).isoformat(timespec='seconds')}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
