"""Archive ingestion cost: the same members as a folder, a zip, a tar and a tar.gz (issue 19.2).

    .venv/bin/python -m bench.archives [--members 20000] [--large 100000] [--chunk 32]
                                       [--forms folder zip tar tar.gz]

What is timed is what an archive changes, not the model: planning (enumerating the source
into item rows; a tar is streamed once and its members staged in the image store) plus, chunk
by chunk as the pipeline does it, reading every pending member (one ``MemberReader`` per
chunk, or the staged copy), hashing it and storing the original. The model forward is left
out: it costs the same whatever the container. Fresh SQLite database and data directory per
run, the product's chunk size (32).

Rows: ``--members`` empty members and as many small distinct JPEGs (~1 KB), then
``--large`` empty members (linearity: at most 5x the time of ``--members``). Each archive row
prints its ratio to the folder row of the same members (wall time; the CPU time of the
process is printed beside it, as the wall time on a shared machine includes waiting for a
core); the targets are <= 1.5x the folder
and <= 5x from 20k to 100k members.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image
from sqlalchemy import select

from shared.db import migrations
from shared.db.database import Database
from shared.db.models import IngestionItem, ItemStatus
from shared.imaging.store import read_original, relative_path, store_original
from shared.ingestion.sources import MemberReader
from shared.ingestion.supervisor import IngestionSupervisor
from shared.ingestion.zip_cache import ZIP_CACHE
from shared.settings import load_settings

FORMS = ("folder", "zip", "tar", "tar.gz")
Members = Callable[[], Iterable[tuple[str, bytes]]]


def empty_members(n: int) -> Members:
    return lambda: ((f"d{i // 1000}/f{i}.jpg", b"") for i in range(n))


def jpeg_members(n: int) -> Members:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 140, 200)).save(buffer, "JPEG", quality=80)
    base = buffer.getvalue()
    # Distinct content per member (bytes after the end-of-image marker are ignored by decoders)
    # so that every one is hashed and stored, none is linked to an earlier one.
    return lambda: ((f"d{i // 1000}/p{i}.jpg", base + i.to_bytes(4, "little")) for i in range(n))


def build(form: str, root: Path, members: Members) -> Path:
    if form == "folder":
        path = root / "folder"
        for name, data in members():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return path
    if form == "zip":
        path = root / "set.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members():
                archive.writestr(name, data)
        return path
    path = root / ("set.tar" if form == "tar" else "set.tar.gz")
    with tarfile.open(path, "w" if form == "tar" else "w:gz") as archive:
        for name, data in members():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def ingest_without_model(source: Path, work: Path, chunk: int) -> tuple[float, float, int]:
    """Plan, then read + hash + store every pending member chunk by chunk: (plan s, read s, n)."""
    settings = load_settings(data_dir=work / "data", chunk_size=chunk)
    migrations.upgrade(settings.resolved_database_url)
    db = Database.from_url(settings.resolved_database_url)
    ZIP_CACHE.clear()  # a cold start: the first chunk parses the zip's directory
    try:
        start = time.perf_counter()
        plan = IngestionSupervisor(db, settings.ingestion_config()).start(source)
        planned = time.perf_counter() - start
        start = time.perf_counter()
        read = 0
        for number in plan.pending_chunks:
            with db.read() as session:
                # As the pipeline claims a chunk (see pipeline._claim: by chunk, then status).
                rows = [
                    r
                    for r in session.execute(
                        select(
                            IngestionItem.member, IngestionItem.staged_sha256, IngestionItem.status
                        )
                        .where(
                            IngestionItem.ingestion_id == plan.ingestion_id,
                            IngestionItem.chunk == number,
                        )
                        .order_by(IngestionItem.seq)
                    )
                    if r.status == ItemStatus.PENDING
                ]
            staged = source.is_file() and ".tar" in source.name
            if staged:
                for row in rows:
                    read_original(settings.data_dir, relative_path(row.staged_sha256))
            else:
                kind_of = "folder" if source.is_dir() else "zip"
                with MemberReader(source, kind_of, settings.ingestion_config()) as reader:
                    for row in rows:
                        data = reader.read(row.member)
                        sha = hashlib.sha256(data).hexdigest()
                        store_original(settings.data_dir, sha, data)
            read += len(rows)
        return planned, time.perf_counter() - start, read
    finally:
        db.dispose()
        ZIP_CACHE.clear()


def run(
    label: str, members: Members, n: int, forms: list[str], chunk: int, tmp_dir: str | None
) -> dict[str, float]:
    totals: dict[str, float] = {}
    cpus: dict[str, float] = {}
    for form in forms:
        with tempfile.TemporaryDirectory(prefix="bench-archives-", dir=tmp_dir) as tmp:
            root = Path(tmp)
            source = build(form, root, members)
            cpu = time.process_time()
            planned, read, count = ingest_without_model(source, root / "work", chunk)
            cpu = time.process_time() - cpu
            assert count == n, (form, count, n)
            total = planned + read
            totals[form] = total
            cpus[form] = cpu
            ratio = f"{total / totals['folder']:.2f}x folder" if "folder" in totals else ""
            print(
                f"{label:>14} {form:>7}: plan {planned:7.2f} s  read {read:7.2f} s  "
                f"total {total:7.2f} s (CPU {cpu:6.2f} s)  {n / total:7.0f} members/s  {ratio}",
                flush=True,
            )
            shutil.rmtree(root / "work", ignore_errors=True)
    return {**totals, **{f"{form} cpu": value for form, value in cpus.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=100_000, help="0: skip the linearity rows")
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--forms", nargs="+", default=list(FORMS), choices=FORMS)
    parser.add_argument(
        "--tmp",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where sources and data dirs are built (default: /dev/shm, so that the disk's "
        "fsync latency, the same for every form, does not hide the archive's own cost)",
    )
    args = parser.parse_args()
    forms = ["folder", *[f for f in args.forms if f != "folder"]]
    n = args.members
    small = run(f"{n} empty", empty_members(n), n, forms, args.chunk, args.tmp)
    run(f"{n} jpeg", jpeg_members(n), n, forms, args.chunk, args.tmp)
    if args.large:
        large = run(
            f"{args.large} empty",
            empty_members(args.large),
            args.large,
            forms,
            args.chunk,
            args.tmp,
        )
        for form in forms:
            print(
                f"linearity {form:>7}: {args.large} / {n} members = "
                f"{large[form] / small[form]:.2f}x the time, "
                f"{large[form + ' cpu'] / small[form + ' cpu']:.2f}x the CPU time "
                f"(members x{args.large / n:.0f})"
            )


if __name__ == "__main__":
    main()
