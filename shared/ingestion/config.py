"""What ingestion needs of the settings: one frozen config, built once at the entry point by
``Settings.ingestion_config()`` (the ingestion components never see the whole settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class IngestionConfig:
    """Planning, chunk processing and source limits (``ROISEARCH_<FIELD NAME>`` each).

    ``data_dir`` holds the content-addressed image store (and staged tar members);
    ``embedded`` says that chunks run in the process that queued them (no Redis), which is
    when a ``running`` ingestion whose driver died is queued again by the supervisor.
    """

    data_dir: Path
    chunk_size: int
    decode_threads: int
    store_originals: bool
    embedded: bool
    # Limits of one source (see docs/ingestion.md, "Sources and limits").
    max_image_pixels: int
    max_member_bytes: int
    max_archive_total_bytes: int
    max_archive_members: int
    max_compression_ratio: float
