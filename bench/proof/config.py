"""Sizes of the quick and full batteries, and the per-scenario environment (own database,
own data directory, own queue) that every scenario gets on the private servers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.proof.servers import PrivateServers
from shared.db import migrations
from shared.settings import MiB, Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_WEIGHTS = REPO_ROOT / "tests" / "fixtures" / "yolov7" / "yolov7-tiny-random.pt"
DEMO_WEIGHTS = REPO_ROOT / "shared" / "assets" / "demo-detector.safetensors"
API_KEY = "proof-key-" + "0" * 8
WRONG_KEY = "proof-key-" + "1" * 8
ALLOWED_ORIGIN = "https://allowed.example"


def default_weights() -> Path:
    """The shipped demo detector; before it exists, the random-weight fixture checkpoint."""
    for candidate in (DEMO_WEIGHTS, FIXTURE_WEIGHTS):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no detector weights: neither {DEMO_WEIGHTS} nor {FIXTURE_WEIGHTS} exists (pass --weights)"
    )


@dataclass(frozen=True)
class ProofConfig:
    """Every size of the battery. ``quick()`` fits in about five minutes on two cores."""

    quick: bool
    weights: Path
    img_size: int
    # faults
    kill_images: int
    kills: int
    workers: int
    redis_images: int
    pg_images: int
    pg_terminations: int
    snapshot_objects: int
    snapshot_kills: int
    upload_images: int
    # load
    load_objects: int
    load_seconds: float
    load_levels: tuple[int, ...]
    shed_limit: int
    load_ingest_images: int
    # security
    fuzz_examples: int
    slow_uploads: int
    # summary
    engine_reps: int
    ingest_images: int
    scenario_timeout_s: float
    chunk_size: int = 4

    @classmethod
    def build(cls, *, quick: bool, weights: Path | None = None) -> ProofConfig:
        sizes = {name: both[0 if quick else 1] for name, both in _SIZES.items()}
        return cls(quick=quick, weights=weights or default_weights(), img_size=256, **sizes)


# Every size as (quick, full).
_SIZES: dict[str, tuple[Any, Any]] = {
    "kill_images": (48, 300),
    "kills": (5, 10),
    "workers": (2, 2),
    "redis_images": (24, 120),
    "pg_images": (24, 120),
    "pg_terminations": (5, 10),
    "snapshot_objects": (20_000, 100_000),
    "snapshot_kills": (1, 5),
    "upload_images": (24, 100),
    "load_objects": (20_000, 100_000),
    "load_seconds": (4.0, 15.0),
    "load_levels": ((1, 8, 32, 64), (1, 8, 32, 64)),
    "shed_limit": (16, 16),
    "load_ingest_images": (16, 60),
    "fuzz_examples": (3, 25),
    "slow_uploads": (16, 64),
    "engine_reps": (1, 3),
    "ingest_images": (8, 60),
    "scenario_timeout_s": (180.0, 900.0),
}


@dataclass
class Scenario:
    """One scenario's private world: a database, a data directory, a queue, a scratch dir."""

    name: str
    config: ProofConfig
    servers: PrivateServers
    root: Path
    database: str = ""
    database_url: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls, name: str, config: ProofConfig, servers: PrivateServers, base: Path, **overrides: Any
    ) -> Scenario:
        slug = re.sub(r"[^a-z0-9_]+", "_", name.lower())
        root = base / slug
        root.mkdir(parents=True, exist_ok=True)
        database = f"proof_{slug}"
        url = servers.postgres.create_database(database)
        migrations.upgrade(url)
        values: dict[str, Any] = {
            "data_dir": root / "data",
            "database_url": url + "?application_name=proof-harness",
            "redis_url": servers.redis.url,
            "queue_name": f"proof-{slug}",
            "weights": config.weights,
            "img_size": config.img_size,
            "batch_size": 4,
            "chunk_size": config.chunk_size,
            "torch_threads": 1,
            "decode_threads": 1,
            "worker_ttl_s": 20,
            "api_key": API_KEY,
            "cors_origins": [ALLOWED_ORIGIN],
            "max_member_bytes": 16 * MiB,
            "max_archive_members": 500,
            "max_upload_bytes": 64 * MiB,
            "max_query_image_bytes": 8 * MiB,
            "index_poll_interval_s": 0.2,
            "log_level": "WARNING",
        }
        values.update(overrides)
        return cls(name, config, servers, root, database, url, values)

    def settings(self, **overrides: Any) -> Settings:
        """Settings for code the harness runs in its own process."""
        return load_settings(**(self.overrides | overrides))

    def env_values(self, role: str, **overrides: Any) -> dict[str, Any]:
        """ROISEARCH_* values for a child; its database connections are named ``proof-ROLE``."""
        values = self.overrides | overrides
        values["database_url"] = f"{self.database_url}?application_name=proof-{role}"
        return values
