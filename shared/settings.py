"""The one validated settings object of roisearch.

Every process builds exactly one :class:`Settings` at its entry point (CLI command, API app
factory, worker) and passes it down. Nothing else in the code base reads ``os.environ``.

Variables use the prefix ``ROISEARCH_`` (for example ``ROISEARCH_DATABASE_URL``); a ``.env``
file in the working directory is read too. Invalid values fail at start-up with a message
that names the variable and says how to fix it (see :func:`load_settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from platformdirs import user_data_dir
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.ingestion.config import IngestionConfig
from shared.reports.config import ReportConfig

if TYPE_CHECKING:
    from shared.yolov7.detector_config import DetectorConfig

ENV_PREFIX = "ROISEARCH_"

MiB = 1024 * 1024
GiB = 1024 * MiB


def default_data_dir() -> Path:
    """The per-user data directory (``~/.local/share/roisearch`` on Linux): one collection per
    user wherever a command runs, where a path relative to the working directory gave a new,
    empty collection in every folder."""
    return Path(user_data_dir("roisearch", appauthor=False))


class SettingsError(ValueError):
    """Start-up configuration is invalid; the message names each variable and the fix."""


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class StorageSettings(BaseModel):
    """Where things live: data directory, database, queue."""

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the SQLite database, index snapshots, image store and reports live. "
        "Unset: the per-user data directory (~/.local/share/roisearch on Linux).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Unset: SQLite file in the data directory. PostgreSQL: "
        "postgresql+psycopg://user@host:5432/dbname",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL for the RQ queue. Unset: embedded mode, jobs run in-process.",
    )
    queue_name: str = Field(default="roisearch", min_length=1)
    store_originals: bool = Field(
        default=True,
        description="Keep a content-addressed copy of every ingested image (needed for crops "
        "and the original-file endpoint).",
    )


class ModelSettings(BaseModel):
    """The detector and how it runs (``Settings.detector_config()`` gives the engine its
    narrow config)."""

    weights: Path | None = Field(
        default=None,
        description="YOLOv7 checkpoint (.pt official release, or our .safetensors). "
        "Unset: the bundled demo detector.",
    )
    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N")
    img_size: int | None = Field(
        default=None,
        ge=64,
        le=4096,
        description="Letterbox long side. Unset: the model's native size (640 for official "
        "weights, as recorded for the demo detector).",
    )
    batch_size: int = Field(default=8, ge=1, le=256)
    conf_threshold: float = Field(default=0.25, gt=0.0, lt=1.0)
    iou_threshold: float = Field(default=0.45, gt=0.0, le=1.0)
    max_detections: int = Field(default=300, ge=1, le=10000)
    feature_layers: Annotated[list[int] | None, NoDecode] = Field(
        default=None,
        description="Comma-separated layer indices to pool from. Unset: the architecture's "
        "default (model.99 for yolov7).",
    )
    pooling: Literal["roi_align", "multiscale"] = Field(default="roi_align")
    roi_fraction: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Pool each box over its central fraction (per side). Unset: the weights "
        "file's recorded value (the demo detector: 0.5), else 1 (the whole box).",
    )
    torch_threads: int | None = Field(
        default=None, ge=1, le=512, description="Model threads in all (default: every core)."
    )
    model_streams: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Batches the model runs at once, sharing torch_threads (default: 1 on "
        "CUDA, on CPU one per core up to 2 cores, else one per 2 threads, at most 4).",
    )
    decode_threads: int = Field(default=2, ge=1, le=64, description="Image decoding threads.")


class IndexSettings(BaseModel):
    """The FAISS index and its catch-up."""

    index_factory: str | None = Field(
        default=None,
        description="FAISS factory string that overrides the automatic index choice.",
    )
    index_poll_interval_s: float = Field(default=0.5, gt=0.0, le=60.0)
    index_snapshot_interval_s: float = Field(default=300.0, gt=0.0)
    index_memory_budget_mb: int = Field(
        default=2048,
        ge=0,
        description="RAM one space's index may use uncompressed (float32 vectors in IVF-Flat); "
        "above it the compressed tier (IVF-PQ codes in RAM, float16 re-ranking from a "
        "memory-mapped file beside the snapshots) is chosen. 0: no limit.",
    )


class IngestionSettings(BaseModel):
    """Bulk ingestion and its workers (``Settings.ingestion_config()``)."""

    import_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated server-side folders that path ingestions may read from.",
    )
    chunk_size: int = Field(default=32, ge=1, le=10000, description="Items per RQ job.")
    worker_ttl_s: int = Field(default=40, ge=20, le=3600)
    job_timeout_s: int = Field(default=1800, ge=10)


class LimitsSettings(BaseModel):
    """What one input may cost: members, archives, images, uploads, queries."""

    max_image_pixels: int = Field(default=60_000_000, ge=1)
    max_member_bytes: int = Field(default=256 * MiB, ge=1)
    max_archive_total_bytes: int = Field(default=64 * GiB, ge=1)
    max_archive_members: int = Field(default=1_000_000, ge=1)
    max_compression_ratio: float = Field(default=200.0, gt=1.0)
    max_upload_bytes: int = Field(default=512 * MiB, ge=1)
    max_query_image_bytes: int = Field(default=32 * MiB, ge=1)
    max_k: int = Field(default=1000, ge=1)
    max_page_size: int = Field(default=500, ge=1)
    max_concurrent_searches: int = Field(default=64, ge=1)


class ApiSettings(BaseModel):
    """The HTTP API."""

    api_key: SecretStr | None = Field(default=None)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    host: str = Field(default="127.0.0.1")
    port: int = Field(default=8000, ge=1, le=65535)
    # Hostile clients (issue 19): DNS rebinding, stalled bodies.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Host header names the API answers (DNS rebinding). Unset: "
        "localhost, 127.0.0.1, ::1 and ROISEARCH_HOST. '*' answers any.",
    )
    body_stall_timeout_s: float = Field(
        default=30.0,
        gt=0.0,
        le=3600.0,
        description="A request body that makes no progress for this long is dropped with 408.",
    )
    max_open_bodies_per_client: int = Field(
        default=16,
        ge=1,
        description="Request bodies one client address may be sending at once; more get 429.",
    )


class ReportSettings(BaseModel):
    """Report jobs."""

    report_threads: int = Field(
        default=1,
        ge=1,
        le=512,
        description="FAISS (OpenMP) threads of a report job's clustering. 1 keeps reports "
        "from starving searches and ingestion on shared machines; raise it on an idle host.",
    )


class Settings(
    StorageSettings,
    ModelSettings,
    IndexSettings,
    IngestionSettings,
    LimitsSettings,
    ApiSettings,
    ReportSettings,
    BaseSettings,
):
    """Configuration of one roisearch process (API, worker or CLI).

    The fields are declared by section (the base classes above); every one is still read from
    ``ROISEARCH_<FIELD NAME>``. Components get a narrow frozen config built here
    (:meth:`detector_config`, :meth:`ingestion_config`), never the whole object.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator(
        "feature_layers", "import_roots", "cors_origins", "allowed_hosts", mode="before"
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        value = value.strip().lower()
        if value in {"auto", "cpu", "cuda"}:
            return value
        if value.startswith("cuda:") and value[5:].isdigit():
            return value
        raise ValueError("must be auto, cpu, cuda or cuda:N")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "must start with sqlite:/// or postgresql+psycopg:// (other databases are not "
                "supported)"
            )
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            raise ValueError("use the psycopg 3 driver: postgresql+psycopg://...")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://host:port/db URL (or unset for embedded mode)")
        return value

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        if self.max_query_image_bytes > self.max_upload_bytes:
            raise ValueError(
                "ROISEARCH_MAX_QUERY_IMAGE_BYTES must not exceed ROISEARCH_MAX_UPLOAD_BYTES"
            )
        return self

    # --- derived paths -------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'roisearch.db').resolve()}"

    @property
    def host_allow_list(self) -> frozenset[str]:
        """Host names the API answers, lower-case, without ports ("*": any)."""
        if self.allowed_hosts:
            return frozenset(h.strip().lower().strip("[]") for h in self.allowed_hosts)
        return frozenset({"localhost", "127.0.0.1", "::1", self.host.lower().strip("[]")})

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: jobs run in-process."""
        return self.redis_url is None

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def image_store_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    # --- narrow configurations of the components ----------------------------------------
    def ingestion_config(self) -> IngestionConfig:
        """Ingestion's narrow config: planning, chunks, source limits."""
        return IngestionConfig(
            data_dir=self.data_dir,
            chunk_size=self.chunk_size,
            decode_threads=self.decode_threads,
            store_originals=self.store_originals,
            embedded=self.embedded,
            max_image_pixels=self.max_image_pixels,
            max_member_bytes=self.max_member_bytes,
            max_archive_total_bytes=self.max_archive_total_bytes,
            max_archive_members=self.max_archive_members,
            max_compression_ratio=self.max_compression_ratio,
        )

    def report_config(self) -> ReportConfig:
        """Report jobs' narrow config."""
        return ReportConfig(
            reports_dir=self.reports_dir,
            data_dir=self.data_dir,
            max_image_pixels=self.max_image_pixels,
            report_threads=self.report_threads,
        )

    # --- engine configuration ------------------------------------------------------------
    def detector_config(self) -> DetectorConfig:
        """The engine's narrow config (the engine never sees these settings)."""
        # imported here: the package shared.yolov7 loads torch, which processes that never run
        # the model (CLI clients, --help) should not pay for
        from shared.yolov7.detector_config import DetectorConfig

        layers = self.feature_layers
        return DetectorConfig(
            weights=self.weights,
            device=self.device,
            img_size=self.img_size,
            feature_layers=tuple(layers) if layers else None,
            pooling=self.pooling,
            roi_fraction=self.roi_fraction,
            conf_threshold=self.conf_threshold,
            iou_threshold=self.iou_threshold,
            max_detections=self.max_detections,
            batch_size=self.batch_size,
            torch_threads=self.torch_threads,
            model_streams=self.model_streams,
        )


def load_settings(**overrides: object) -> Settings:
    """Build and validate the settings; raise :class:`SettingsError` naming each bad variable.

    ``overrides`` take precedence over the environment (used by CLI options and tests).
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            variable = ENV_PREFIX + field.upper() if error["loc"] else "(settings)"
            lines.append(f"{variable}: {error['msg']} (got {error.get('input')!r})")
        raise SettingsError(
            "invalid configuration:\n  " + "\n  ".join(lines) + "\nFix the variable(s) above "
            "(environment or .env) and start again."
        ) from None
