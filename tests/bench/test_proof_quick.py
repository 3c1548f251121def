"""The proof harness itself, so that it cannot rot: its private servers (and the check that
catches a stray server on the port), and the bad-input section end to end on its corpora."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.proof import badinput
from bench.proof.__main__ import stray_server_refused
from bench.proof.config import ProofConfig
from bench.proof.results import Report
from bench.proof.servers import PostgresServer, PrivateServers, ServerError, free_port
from tests.conftest import YOLOV7_FIXTURES

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists(),
    reason="the proof harness starts its own redis-server; it is not installed here",
)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[PrivateServers]:
    with PrivateServers(tmp_path) as started:
        yield started


def test_servers_are_ours_and_a_stray_one_is_refused(
    servers: PrivateServers, tmp_path: Path
) -> None:
    evidence = servers.verify()
    assert evidence["redis"]["pid"] == servers.redis.proc.pid  # type: ignore[index,union-attr]
    assert evidence["postgres"]["cluster_name"] == servers.postgres.nonce  # type: ignore[index]
    assert stray_server_refused(servers, tmp_path).ok is True

    old_pid = servers.redis.proc.pid  # type: ignore[union-attr]
    with servers.redis.client() as client:
        client.set("some-job", b"1")
    servers.redis.restart_without_persistence()
    with servers.redis.client() as client:
        assert client.get("some-job") is None  # nothing survives: no persistence
    assert servers.redis.verify()["pid"] not in (None, old_pid)


def test_a_server_already_on_the_port_is_not_used(tmp_path: Path) -> None:
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", free_port()))
        squatter.listen()
        server = PostgresServer()
        server.port = squatter.getsockname()[1]
        with pytest.raises(ServerError, match="already taken"):
            server.start()
        server.stop()


@pytest.mark.slow
def test_bad_input_section_counts(servers: PrivateServers, tmp_path: Path) -> None:
    weights = YOLOV7_FIXTURES / "yolov7-tiny-random.pt"
    if not weights.is_file():
        pytest.skip(f"fixture weights {weights} not found")
    config = ProofConfig.build(quick=True, weights=weights)
    report = Report(quick=True)
    badinput.run(config, servers, tmp_path, report)
    rows = {check.name: check for check in report.checks}

    corpus = rows["image corpus: tried / done / refused with reason"].data
    assert corpus["tried"] >= 40 and corpus["done"] >= 15 and corpus["refused"] >= 20
    assert rows["image corpus: crashed"].ok is True
    assert rows["image corpus: outcome as specified"].ok is True
    assert rows["archive attacks: crashed"].ok is True
    assert rows["written outside the data directory"].ok is True
    assert rows["ingesting child: peak memory, time"].ok is True
    attacks = rows["archive attacks: tried / done / refused with reason"].data["per_source"]
    assert len(attacks) >= 10
    for name in ("zip: traversal + absolute names", "tar: symlink/hardlink/devices/fifo/traversal"):
        assert attacks[name]["unexpected"] == [], attacks[name]


def test_performance_summary_ratios_run_on_bench_ingest_rows(tmp_path: Path) -> None:
    """The summary calls into bench.ingest; a renamed function there once broke it silently."""
    import dataclasses

    from bench.proof import summary

    weights = YOLOV7_FIXTURES / "yolov7-tiny-random.pt"
    config = dataclasses.replace(ProofConfig.build(quick=True, weights=weights), ingest_images=3)
    report = Report(quick=True)
    summary.ingestion_ratio(config, tmp_path, report)
    by_name = {check.name: check for check in report.checks}
    assert set(by_name) == {
        "engine: detect+embed vs bare forward",
        "ingestion: end-to-end vs bare forward",
    }, [c.figure for c in report.checks]
    rates = by_name["ingestion: end-to-end vs bare forward"].data["rates"]
    assert len(rates) == 4 and all(rate > 0 for rate in rates.values())
