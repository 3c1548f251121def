"""Bad input: the image corpus and the archive-attack corpus through a real ingestion.

Every source is ingested by a child process (embedded mode: the same planning and chunk code
the workers run, against the private PostgreSQL) so that a crash, a hang or a memory blow-up
cannot take the harness down and the child's peak RSS is measured on its own. Afterwards,
from the database: per member, done or failed with which code and message; members not
accounted for; and, from the file system, anything written outside the data directory.

    python -m bench.proof.badinput --child SPEC.json OUT.json   (internal)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.proof.config import ProofConfig, Scenario
from bench.proof.corpus import EVIL_PREFIX, Attack, Expect, attacks, image_corpus
from bench.proof.hostile import check_archive_cost, check_special_sources
from bench.proof.processes import child_env
from bench.proof.results import Check, Report
from bench.proof.servers import PrivateServers
from shared.db.database import Database
from shared.db.models import Ingestion, IngestionItem, ItemStatus
from tests.shared.ingestion.archives import tree_snapshot

SECTION = "bad input"
CRASH_CODES = {"internal"}  # an item error that means "we did not know what happened"
# Refused with a reason: failed, or skipped (a member that is not an image at all).
REFUSED = {ItemStatus.FAILED, ItemStatus.SKIPPED}


@dataclass
class Tally:
    tried: int = 0
    done: int = 0
    refused: int = 0  # failed with a code and a message naming the member
    unclear: int = 0  # failed without a code, or with a message that does not name it
    crashed: int = 0
    unexpected: list[str] = field(default_factory=list)  # outcome differs from Expect
    unaccounted: int = 0
    unclear_examples: list[str] = field(default_factory=list)
    crash_examples: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.tried += other.tried
        self.done += other.done
        self.refused += other.refused
        self.unclear += other.unclear
        self.crashed += other.crashed
        self.unexpected += other.unexpected
        self.unaccounted += other.unaccounted
        self.unclear_examples += other.unclear_examples[: max(0, 5 - len(self.unclear_examples))]
        self.crash_examples += other.crash_examples[: max(0, 5 - len(self.crash_examples))]


def _names_member(message: str, member: str) -> bool:
    tail = member.replace("\\", "/").rsplit("/", 1)[-1]
    return member in message or (bool(tail) and tail in message)


def tally(db: Database, attack: Attack, ingestion_id: int | None, crashed: bool) -> Tally:
    out = Tally(tried=attack.member_count)
    if ingestion_id is None:
        out.crashed = attack.member_count
        return out
    with db.read() as session:
        source_error = session.scalar(
            select(Ingestion.error_code).where(Ingestion.id == ingestion_id)
        )
        rows = session.execute(
            select(
                IngestionItem.member,
                IngestionItem.status,
                IngestionItem.error_code,
                IngestionItem.error_message,
            ).where(IngestionItem.ingestion_id == ingestion_id)
        ).all()
    seen: dict[str, tuple[str, str | None]] = {}
    for member, status, code, message in rows:
        seen[member] = (status, code)
        refused = status in REFUSED
        if status == ItemStatus.DONE:
            out.done += 1
        elif refused and code in CRASH_CODES:
            out.crashed += 1
            out.crash_examples.append(f"{member}: {code}: {message}")
        elif refused and code and message and _names_member(message, member):
            out.refused += 1
        elif refused:
            out.unclear += 1
            if len(out.unclear_examples) < 5:
                out.unclear_examples.append(f"{member}: {code}: {message}")
        else:  # pending after the run: lost
            out.crashed += 1
            out.crash_examples.append(f"{member}: left {status}")
    if crashed:
        out.crashed += 1
    refused_at_source = source_error is not None
    for member, expect in attack.members.items():
        got = seen.get(member)
        if got is None and refused_at_source:
            continue  # the source was refused from some member on, with its own reason
        if not _matches(expect, got):
            out.unexpected.append(f"{member}: expected {_fmt(expect)}, got {got}")
    if attack.source_error is not None and source_error != attack.source_error:
        out.unexpected.append(f"source: expected error {attack.source_error}, got {source_error}")
    if refused_at_source:
        # Members past the point where the source was refused are covered by that refusal.
        out.refused += max(0, attack.member_count - len(rows))
    else:
        out.unaccounted = max(0, attack.member_count - len(rows))
    return out


def _matches(expect: Expect, got: tuple[str, str | None] | None) -> bool:
    if got is None:
        return False
    status, code = got
    if expect.status == "any":
        return status == ItemStatus.DONE or (status in REFUSED and bool(code))
    if expect.status == ItemStatus.FAILED:
        return status in REFUSED and (expect.code is None or code == expect.code)
    return status == expect.status


def _fmt(expect: Expect) -> str:
    return expect.status + (f" ({expect.code})" if expect.code else "")


def _outside_state(root: Path, data_dir: Path, nonce: str) -> dict[str, Any]:
    passwd = Path("/etc/passwd").stat()
    return {
        "tree": tree_snapshot(root, exclude=data_dir),
        "evil": sorted(str(p) for p in Path("/tmp").glob(f"{EVIL_PREFIX}{nonce}*")),
        "passwd": (passwd.st_size, passwd.st_mtime_ns),
    }


def run(config: ProofConfig, servers: PrivateServers, base: Path, report: Report) -> None:
    scenario = Scenario.create(
        "bad input", config, servers, base, redis_url=None, chunk_size=32, store_originals=True
    )
    settings = scenario.settings()
    nonce = secrets.token_hex(6)
    sources = scenario.root / "sources"
    corpus = image_corpus(sources / "image-corpus.zip", mutants=20 if config.quick else 60)
    hostile = attacks(
        sources / "attacks",
        nonce,
        max_members=settings.max_archive_members,
        max_member_bytes=settings.max_member_bytes,
    )
    cwd = scenario.root / "cwd"  # relative writes by a confused extractor would land here
    cwd.mkdir(exist_ok=True)
    before = _outside_state(scenario.root, settings.data_dir, nonce)

    all_sources = [corpus, *hostile]
    spec = scenario.root / "spec.json"
    out = scenario.root / "out.json"
    values = {k: str(v) if isinstance(v, Path) else v for k, v in scenario.overrides.items()}
    values["database_url"] = scenario.database_url + "?application_name=proof-badinput"
    spec.write_text(json.dumps({"settings": values, "sources": [str(a.path) for a in all_sources]}))
    began = time.monotonic()
    log = (scenario.root / "child.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.proof.badinput", "--child", str(spec), str(out)],
        env=child_env({}),
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - began
    peak_mb = usage.ru_maxrss / 1024
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        own = json.loads((scenario.root / PEAK_FILE).read_text())["peak_rss_mb"]
        if own is not None:
            peak_mb = float(own)
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    after = _outside_state(scenario.root, settings.data_dir, nonce)

    db = Database.from_url(settings.resolved_database_url)
    try:
        image_tally = Tally()
        attack_tally = Tally()
        per_attack: dict[str, Any] = {}
        for attack in all_sources:
            entry = results.get(str(attack.path), {})
            t = tally(db, attack, entry.get("ingestion_id"), bool(entry.get("error")))
            per_attack[attack.name] = t.__dict__ | {"error": entry.get("error")}
            (image_tally if attack is corpus else attack_tally).add(t)
    finally:
        db.dispose()

    kinds = len(corpus.members) - sum(1 for m in corpus.members if m.startswith("mutants/"))
    for label, t in (("image corpus", image_tally), ("archive attacks", attack_tally)):
        extra = f" ({kinds} kinds + mutants)" if t is image_tally else f" ({len(hostile)} sources)"
        report.add(
            Check(
                SECTION,
                f"{label}: tried / done / refused with reason",
                f"{t.tried} tried{extra}: {t.done} done, {t.refused} refused with a reason, "
                f"{t.unclear} unclear"
                + (f" (e.g. {t.unclear_examples[0]!r})" if t.unclear_examples else ""),
                "every bad one refused with a reason",
                t.unclear == 0,
                {"per_source": per_attack} if t is attack_tally else per_attack[corpus.name],
            )
        )
        report.add(
            Check(
                SECTION,
                f"{label}: crashed",
                str(t.crashed) + (f" (e.g. {t.crash_examples[0]!r})" if t.crash_examples else ""),
                "0",
                t.crashed == 0 and proc.returncode == 0,
                {"child_exit": proc.returncode},
            )
        )
        report.add(
            Check(
                SECTION,
                f"{label}: outcome as specified",
                f"{len(t.unexpected)} differ" + (f": {t.unexpected[:3]}" if t.unexpected else ""),
                "0 differ",
                not t.unexpected,
                {"unexpected": t.unexpected},
            )
        )
        report.add(
            Check(
                SECTION,
                f"{label}: members not accounted for",
                str(t.unaccounted),
                "0",
                t.unaccounted == 0,
            )
        )
    new_outside = sorted(
        (after["tree"] - before["tree"]) - {"out.json", "child.log", "spec.json", PEAK_FILE}
    )
    escaped = (
        new_outside
        + after["evil"]
        + (["/etc/passwd changed"] if after["passwd"] != before["passwd"] else [])
    )
    report.add(
        Check(
            SECTION,
            "written outside the data directory",
            f"{len(escaped)}" + (f": {escaped[:5]}" if escaped else ""),
            "0",
            not escaped,
            {"paths": escaped},
        )
    )
    check_special_sources(scenario, SECTION, report)
    check_archive_cost(config, SECTION, report)
    report.add(
        Check(
            SECTION,
            "ingesting child: peak memory, time",
            f"{peak_mb:.0f} MB peak RSS, {elapsed:.0f} s for {len(all_sources)} sources",
            "bounded (< 1.5 GB)",
            peak_mb < 1536,
            {"peak_rss_mb": peak_mb, "elapsed_s": elapsed},
        )
    )


def _child(spec_path: Path, out_path: Path) -> int:
    """Ingest every source in this process; record each ingestion id (or the exception)."""
    from shared.ingestion.supervisor import IngestionSupervisor
    from shared.model_provider import ModelProvider
    from shared.settings import load_settings

    spec = json.loads(spec_path.read_text())
    settings = load_settings(**spec["settings"])
    db = Database.from_url(settings.resolved_database_url)
    models = ModelProvider(settings.detector_config())
    supervisor = IngestionSupervisor(db, settings.ingestion_config())
    results: dict[str, Any] = {}
    for source in spec["sources"]:
        entry: dict[str, Any] = {}
        try:
            plan = supervisor.start(Path(source))
            entry["ingestion_id"] = plan.ingestion_id
            supervisor.run(plan, models)
        except Exception as exc:  # the harness counts this as a crash
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback"] = traceback.format_exc()[-3000:]
            if "ingestion_id" not in entry:  # planning raised: find the row it created
                with db.read() as session:
                    found = session.scalar(select(Ingestion.id).where(Ingestion.source == source))
                entry["ingestion_id"] = found
        results[source] = entry
        out_path.write_text(json.dumps(results))
    db.dispose()
    out_path.with_name(PEAK_FILE).write_text(json.dumps({"peak_rss_mb": _own_peak_mb()}))
    return 0


PEAK_FILE = "child-peak.json"


def _own_peak_mb() -> float | None:
    """This process's peak RSS since its exec (VmHWM). ``wait4``'s ``ru_maxrss`` is not it:
    it also counts the parent's pages the child held between fork and exec, which is the
    whole test runner when the battery runs inside pytest."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.exit(_child(Path(sys.argv[2]), Path(sys.argv[3])))
    sys.exit("usage: python -m bench.proof.badinput --child SPEC.json OUT.json")
