"""Ingestion test scenarios: settings for the fixture model at a small input size, a generated
archive mixing good, broken and hostile members with the outcome each must get, a probe
around the detector, and database totals that expose lost or duplicated rows."""

from __future__ import annotations

import signal
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from sqlalchemy import func, select

from shared.db.database import Database
from shared.db.models import DetectedObject, Image, ImageEmbedding, IngestionItem
from shared.ingestion.leases import owner_id
from shared.ingestion.pipeline import NOT_IMAGE_CODES
from shared.model_provider import ModelProvider
from shared.settings import Settings, load_settings
from shared.yolov7.detector import Detector, ImageResult, PreparedImage
from tests.shared.imaging.corpus import bad_cases, good_cases, jpeg, png
from tests.shared.ingestion.archives import Entry, Special, write_tar, write_zip

IMG_SIZE = 256  # small letterbox: the fixture model runs in ~15 ms per image on one core

torch.set_num_threads(1)


def ingestion_settings(
    data_dir: Path, database_url: str, weights: Path, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "weights": weights,
        "img_size": IMG_SIZE,
        "chunk_size": 8,
        "decode_threads": 2,
    }
    values.update(overrides)
    return load_settings(**values)


class Models(ModelProvider):
    """A provider that hands out an already loaded detector (loading once per test session)."""

    def __init__(self, settings: Settings, detector: Any) -> None:
        super().__init__(settings.detector_config())
        self._detector = detector


class ProbeDetector:
    """Wraps the real detector: counts the images it is asked to embed and can fail on some.

    ``poison((height, width))`` True makes ``embed`` raise for any batch containing an image
    of that size (as given to :meth:`Detector.prepare`), as a model that chokes on one input
    would. ``prepared_in``: the names of the threads that letterboxed images.
    """

    def __init__(
        self,
        inner: Detector,
        *,
        batch_size: int | None = None,
        poison: Callable[[tuple[int, int]], bool] | None = None,
    ) -> None:
        self.inner = inner
        self.batch_size = batch_size or inner.batch_size
        self.poison = poison
        self.calls = 0
        self.images = 0
        self.batch_sizes: list[int] = []
        self.prepared_in: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def as_detector(self) -> Detector:
        """This probe where the pipeline takes a :class:`Detector`.

        The probe is no subclass: it stands in by duck typing (``embed`` here, every other
        attribute forwarded to ``inner`` by ``__getattr__``), which mypy cannot see."""
        return cast(Detector, self)

    def prepare(self, image: np.ndarray, **kwargs: Any) -> PreparedImage:
        self.prepared_in.append(threading.current_thread().name)
        return self.inner.prepare(image, **kwargs)

    def embed(
        self, images: Sequence[np.ndarray | PreparedImage], *args: Any, **kwargs: Any
    ) -> list[ImageResult]:
        self.calls += 1
        self.batch_sizes.append(len(images))
        sizes = [
            image.geometry.original if isinstance(image, PreparedImage) else image.shape[:2]
            for image in images
        ]
        if self.poison is not None and any(self.poison((h, w)) for h, w in sizes):
            raise ValueError("the model cannot take this image")
        self.images += len(images)
        return self.inner.embed(images, *args, **kwargs)


@dataclass(frozen=True)
class MixedArchive:
    path: Path
    expected: dict[str, tuple[str, str | None]]  # member -> (status, error code)
    distinct_images: int  # distinct contents that must end up as images


def build_mixed_archive(directory: Path, kind: str, seed: int = 0) -> MixedArchive:
    """Good images (every awkward mode), a duplicate, the whole bad-input corpus, a text file,
    hostile names and (tar) links/devices, in one archive of ``kind`` (zip | tar.gz)."""
    entries: list[Entry] = []
    expected: dict[str, tuple[str, str | None]] = {}
    contents: set[bytes] = set()

    def add(name: str, data: bytes, status: str, code: str | None = None) -> None:
        entries.append((name, data))
        expected[name] = (status, code)
        if status == "done":
            contents.add(data)

    for i in range(6):
        add(f"photos/{i}.jpg", jpeg(160 + 16 * i, 120, seed * 100 + i), "done")
    add("photos/p.png", png(90, 140, seed * 100 + 50), "done")
    for case in good_cases():
        add(f"modes/{case.name}", case.data, "done")
    add("photos/copy-of-0.jpg", jpeg(160, 120, seed * 100), "done")  # same bytes as 0.jpg
    for case in bad_cases():
        status = "skipped" if case.code in NOT_IMAGE_CODES else "failed"
        add(f"bad/{case.name}", case.data, status, case.code)
    add("docs/readme.txt", b"these are holiday photos\n", "skipped", "not_an_image")
    add("../evil.jpg", jpeg(16, 16, 1), "failed", "unsafe_member_name")
    add("nested/more.zip", b"PK\x03\x04 anything", "failed", "nested_archive")
    add(
        "nested/disguised.jpg",
        write_zip(directory / "inner.zip", [("a.jpg", b"1")]).read_bytes(),
        "failed",
        "nested_archive",
    )
    if kind == "zip":
        path = write_zip(
            directory / f"mixed-{seed}.zip",
            [e for e in entries if not isinstance(e, Special)],
            symlinks=[("link.jpg", "/etc/passwd")],
        )
        expected["link.jpg"] = ("failed", "not_regular_file")
    else:
        for special in (
            Special("link.jpg", tarfile.SYMTYPE, "/etc/passwd"),
            Special("hardlink.jpg", tarfile.LNKTYPE, "photos/0.jpg"),
            Special("dev.jpg", tarfile.CHRTYPE),
        ):
            entries.append(special)
            expected[special.name] = ("failed", "not_regular_file")
        path = write_tar(directory / f"mixed-{seed}.tar.gz", entries, "w:gz")
    return MixedArchive(path, expected, len(contents))


def item_outcomes(db: Database, ingestion_id: int) -> dict[str, tuple[str, str | None]]:
    with db.read() as session:
        rows = session.execute(
            select(IngestionItem.member, IngestionItem.status, IngestionItem.error_code).where(
                IngestionItem.ingestion_id == ingestion_id
            )
        ).all()
    return {member: (str(status), code) for member, status, code in rows}


@dataclass(frozen=True)
class Totals:
    images: int
    objects: int
    embeddings: int
    object_count_sum: int
    distinct_object_keys: int


def totals(db: Database) -> Totals:
    with db.read() as session:
        keys = select(DetectedObject.image_id, DetectedObject.space_id, DetectedObject.ordinal)
        return Totals(
            images=session.scalar(select(func.count()).select_from(Image)) or 0,
            objects=session.scalar(select(func.count()).select_from(DetectedObject)) or 0,
            embeddings=session.scalar(select(func.count()).select_from(ImageEmbedding)) or 0,
            object_count_sum=session.scalar(select(func.sum(ImageEmbedding.object_count))) or 0,
            distinct_object_keys=session.scalar(
                select(func.count()).select_from(keys.distinct().subquery())
            )
            or 0,
        )


@contextmanager
def live_owner() -> Iterator[str]:
    """The lease identity of another process on this host, alive for the block."""
    proc = subprocess.Popen(["sleep", "600"])
    try:
        yield owner_id(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def dead_owner() -> str:
    """The lease identity of a process on this host that has been SIGKILLed."""
    with live_owner() as owner:
        pass
    return owner


KILLED_PLANNER = """
import itertools, os, signal, sys
from pathlib import Path
from shared.db.database import Database
from shared.ingestion.planning import _insert, _rows, create_ingestion
from shared.settings import load_settings

url, data_dir, source, chunk_size = sys.argv[1:5]
settings = load_settings(data_dir=Path(data_dir), database_url=url, chunk_size=int(chunk_size))
config = settings.ingestion_config()
db = Database.from_url(url)
with db.begin() as session:
    ingestion_id = create_ingestion(session, Path(source)).id
# The first batch of the plan is in, the rest never comes: the planner is SIGKILLed, as an
# API process killed while it plans an upload.
_insert(db, list(itertools.islice(_rows(ingestion_id, config, Path(source), "folder"), 5)))
print(ingestion_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


KILLED_RUNNER = """
import os, signal, sys
from pathlib import Path
from shared.db.database import Database
from shared.ingestion.leases import lease
from shared.ingestion.planning import create_ingestion, plan_ingestion
from shared.settings import load_settings

url, data_dir, source, chunk_size = sys.argv[1:5]
settings = load_settings(data_dir=Path(data_dir), database_url=url, chunk_size=int(chunk_size))
db = Database.from_url(url)
with db.begin() as session:
    ingestion_id = create_ingestion(session, Path(source), options={"origin": "upload"}).id
# Planned in full and leased to this process while its chunks run, as by an embedded API's
# in-process queue, which is SIGKILLed before any chunk is done.
with lease(db, ingestion_id):
    plan_ingestion(db, settings.ingestion_config(), ingestion_id)
    print(ingestion_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def plan_in_a_killed_process(settings: Settings, source: Path) -> int:
    """Start planning ``source`` (a folder) in a child process that is SIGKILLed after
    planning 5 members; returns the ingestion it left ``planning``."""
    return _killed_child(KILLED_PLANNER, settings, source)


def run_in_a_killed_process(settings: Settings, source: Path) -> int:
    """Plan ``source`` (a folder) in full in a child process that is SIGKILLed while it holds
    the lease to run the chunks; returns the ingestion it left ``running``, all pending."""
    return _killed_child(KILLED_RUNNER, settings, source)


def _killed_child(script: str, settings: Settings, source: Path) -> int:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            settings.resolved_database_url,
            str(settings.data_dir),
            str(source),
            str(settings.chunk_size),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    return int(done.stdout.strip())
