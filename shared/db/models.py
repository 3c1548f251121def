"""SQLAlchemy 2 typed models: the system of record.

The database holds every fact roisearch knows (including every object's vector); Redis and the
FAISS index are derived and can be rebuilt from it. The schema is created by the Alembic
migrations under ``migrations/`` and runs unchanged on SQLite and PostgreSQL.

Coordinate frame of ``DetectedObject`` boxes: original-image pixels (after EXIF orientation),
``x1, y1, x2, y2`` with ``0 <= x1 < x2 <= width`` and ``0 <= y1 < y2 <= height``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger keeps PostgreSQL ids 64-bit.
IdType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class IngestionStatus(enum.StrEnum):
    PLANNING = "planning"  # members are being enumerated into items
    RUNNING = "running"  # items are queued / being processed
    DONE = "done"  # every item is done, failed or skipped
    FAILED = "failed"  # the source itself could not be read (item-level errors do not count)
    CANCELLED = "cancelled"


class ItemStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # e.g. a directory entry or an archive member we refuse on purpose


class ReportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class EmbeddingSpace(Base):
    """Everything that makes two vectors comparable. Vectors of different spaces never mix."""

    __tablename__ = "embedding_spaces"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the canonical spec
    weights_sha256: Mapped[str] = mapped_column(String(64))
    architecture: Mapped[str] = mapped_column(String(64))
    layers: Mapped[list[Any]] = mapped_column(JSON)
    pooling: Mapped[str] = mapped_column(String(32))
    input_size: Mapped[int] = mapped_column(Integer)
    dim: Mapped[int] = mapped_column(Integer)
    class_names: Mapped[list[Any]] = mapped_column(JSON)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Ingestion(Base):
    __tablename__ = "ingestions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    source: Mapped[str] = mapped_column(Text)  # what the user named (path or upload file name)
    source_kind: Mapped[str] = mapped_column(String(16))  # folder | zip | tar | file | upload
    status: Mapped[str] = mapped_column(String(16), default=IngestionStatus.PLANNING)
    total_items: Mapped[int] = mapped_column(Integer, default=0)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The process planning it or running it in process ("host:pid:start"); it renews
    # updated_at while it does. NULL: nobody drives it (queued, or the run ended). See
    # shared/ingestion/leases.py.
    lease_owner: Mapped[str | None] = mapped_column(String(300))

    items: Mapped[list[IngestionItem]] = relationship(
        back_populates="ingestion", cascade="all, delete-orphan", passive_deletes=True
    )


class IngestionItem(Base):
    """One archive member or file: the durable record from which jobs are (re-)enqueued."""

    __tablename__ = "ingestion_items"
    __table_args__ = (
        UniqueConstraint("ingestion_id", "member"),
        Index("ix_ingestion_items_chunk", "ingestion_id", "chunk"),
        Index("ix_ingestion_items_status", "ingestion_id", "status"),
        Index("ix_ingestion_items_image", "image_id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    ingestion_id: Mapped[int] = mapped_column(
        ForeignKey("ingestions.id", ondelete="CASCADE"), nullable=False
    )
    member: Mapped[str] = mapped_column(Text)  # path inside the source (archive member / file)
    seq: Mapped[int] = mapped_column(Integer)  # enumeration order inside the source
    chunk: Mapped[int] = mapped_column(Integer)  # which job processes it
    size: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.PENDING)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"))
    # Content hash of a member staged into the image store at planning time (tar streams).
    staged_sha256: Mapped[str | None] = mapped_column(String(64))
    # An image member's labelled boxes, parsed from its annotation file at planning time
    # (shared.annotations.model.ImageLabels.as_json); NULL: no annotation file labels it.
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    ingestion: Mapped[Ingestion] = relationship(back_populates="items")


class Image(Base):
    __tablename__ = "images"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)  # of the original file bytes
    width: Mapped[int] = mapped_column(Integer)  # after EXIF orientation
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    bytes: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(Text)  # where it was first seen (ingestion source + member)
    storage_path: Mapped[str | None] = mapped_column(Text)  # relative to the data directory
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    objects: Mapped[list[DetectedObject]] = relationship(
        back_populates="image", cascade="all, delete-orphan", passive_deletes=True
    )


class ObjectOrigin(enum.StrEnum):
    DETECTION = "detection"  # a box the detector found
    LABEL = "label"  # a box of an annotation file (shared.annotations)


class LabelClass(Base):
    """A class of imported labels: the datasets' own vocabulary, apart from the detector's."""

    __tablename__ = "label_classes"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)


class DetectedObject(Base):
    """One object and its ROI vector (float32 little-endian bytes, L2-normalised).

    ``origin`` says where its box comes from. A detection has the detector's class and score,
    and ``label_match_id`` names the labelled box of its image it overlaps best with IoU >=
    0.5. A labelled box has ``label_class_id`` (its class in the dataset's vocabulary, kept in
    ``label_classes``), ``class_id`` = -1 - label_class_id (negative: never a detector class,
    so the index's class filter selects label classes too), ``class_name`` = its label class's
    name, score 1, and a negative ordinal (-1 - its rank in the annotation file) so that it
    never collides with a detection's.
    """

    __tablename__ = "objects"
    __table_args__ = (
        # (image, space, ordinal) makes a retried chunk's insert idempotent.
        UniqueConstraint("image_id", "space_id", "ordinal"),
        Index("ix_objects_space_id", "space_id", "id"),
        Index("ix_objects_class", "space_id", "class_id"),
        Index("ix_objects_label_class", "space_id", "origin", "label_class_id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), nullable=False
    )
    space_id: Mapped[int] = mapped_column(ForeignKey("embedding_spaces.id"), nullable=False)
    ordinal: Mapped[int] = mapped_column(Integer)  # rank of the detection within its image
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    class_id: Mapped[int] = mapped_column(Integer)
    class_name: Mapped[str] = mapped_column(String(128))
    score: Mapped[float] = mapped_column(Float)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    origin: Mapped[str] = mapped_column(
        String(16), default=ObjectOrigin.DETECTION, server_default=ObjectOrigin.DETECTION.value
    )
    label_class_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("label_classes.id"))
    label_match_id: Mapped[int | None] = mapped_column(BigInteger)
    label_match_iou: Mapped[float | None] = mapped_column(Float)

    image: Mapped[Image] = relationship(back_populates="objects")

    @property
    def area(self) -> float:
        return max(0.0, self.x2 - self.x1) * max(0.0, self.y2 - self.y1)


class ImageEmbedding(Base):
    """An image processed in one embedding space: its whole-image vector and object count.

    Its presence is what makes re-ingesting a known image (same content hash, same space) a
    link instead of a recomputation, also when the image has no objects.
    """

    __tablename__ = "image_embeddings"
    __table_args__ = (UniqueConstraint("image_id", "space_id"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), nullable=False
    )
    space_id: Mapped[int] = mapped_column(ForeignKey("embedding_spaces.id"), nullable=False)
    object_count: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ObjectTombstone(Base):
    """Deleted object ids, so that every index replica drops them (the row itself is gone)."""

    __tablename__ = "object_tombstones"
    __table_args__ = (Index("ix_object_tombstones_space", "space_id", "id"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    object_id: Mapped[int] = mapped_column(BigInteger)
    space_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # "clusters"
    status: Mapped[str] = mapped_column(String(16), default=ReportStatus.QUEUED)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
