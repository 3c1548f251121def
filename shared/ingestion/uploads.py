"""Uploaded sources are removed once their ingestion no longer needs them (issue 19.3).

An upload is saved under ``<data dir>/uploads/<uuid>/`` and ingested from there. Once no item
is pending (every member is done, failed or skipped, and the originals live in the image
store) or the ingestion is deleted, the directory is only disk space: it is removed. A source
that is not under the uploads directory (a server-side path) is never touched.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shared.db.database import Database
from shared.db.models import Ingestion, IngestionStatus
from shared.ingestion.zip_cache import ZIP_CACHE

UPLOADS = "uploads"  # under the data directory (Settings.uploads_dir)
FINISHED = (IngestionStatus.DONE, IngestionStatus.FAILED, IngestionStatus.CANCELLED)
log = logging.getLogger(__name__)


def image_source(source: str, kind: str, options: Mapping[str, Any], member: str) -> str:
    """Where an image came from, as shown to users: ``<source>::<member>`` for server-side
    sources; for uploads the uploaded name (``set.zip::dir/a.png``, ``a.png``), never the
    server's upload path."""
    if options.get("origin") != "upload":
        return f"{source}::{member}"
    names = options.get("upload_names") or {}
    if member in names:  # one of several uploaded files
        return str(names[member])
    display = str(options.get("display_name") or "upload")
    return display if kind == "file" else f"{display}::{member}"


def upload_directory(data_dir: Path, source: str) -> Path | None:
    """The ``uploads/<uuid>`` directory (under ``data_dir``) holding ``source``, or None for any
    other source."""
    uploads = (data_dir / UPLOADS).resolve()
    path = Path(source)
    try:
        relative = path.resolve().relative_to(uploads)
    except (ValueError, OSError, RuntimeError):
        return None
    if not relative.parts:
        return None  # the uploads directory itself is no one's upload
    return uploads / relative.parts[0]


def remove_upload(data_dir: Path, source: str) -> bool:
    """Remove the upload directory of ``source`` if it is an upload; True if one was removed."""
    directory = upload_directory(data_dir, source)
    if directory is None:
        return False
    ZIP_CACHE.forget(Path(source))  # an open descriptor would keep the disk space in use
    if not directory.exists():
        return False
    shutil.rmtree(directory, ignore_errors=True)
    if directory.exists():
        log.warning("could not remove the upload directory %s", directory)
        return False
    return True


def remove_upload_if_finished(db: Database, data_dir: Path, ingestion_id: int) -> bool:
    """Remove the ingestion's upload once it is done, failed or cancelled (after its commit)."""
    with db.read() as session:
        row = session.execute(
            select(Ingestion.source, Ingestion.status).where(Ingestion.id == ingestion_id)
        ).first()
    if row is None or row.status not in FINISHED:
        return False
    return remove_upload(data_dir, row.source)
