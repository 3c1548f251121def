"""Fault injection, each scenario followed by the invariant checks (``invariants.checks``).

- workers SIGKILLed K times mid-chunk during an ingestion of N images;
- Redis SIGKILLed and restarted empty (no persistence) mid-ingestion;
- PostgreSQL backends of the workers terminated mid-transaction (``pg_terminate_backend``);
- the API SIGKILLed while it writes an index snapshot, and while it receives an upload;
- a data directory that cannot be written, and a disk that fills up mid-ingestion.

Workers run under a supervisor that restarts any process that exits (what systemd or a
container runtime does); restarts that were not our kills are reported. The scenarios under
running workers share one scaffold (``scaffold.ingestion_under_fault``).
"""

from __future__ import annotations

from bench.proof.faults.api import api_snapshot_kill, api_upload_kill
from bench.proof.faults.disk import disk_faults
from bench.proof.faults.scaffold import ScenarioFn
from bench.proof.faults.workers import pg_terminate, redis_restart, worker_kills

SCENARIOS: dict[str, ScenarioFn] = {
    "worker SIGKILL": worker_kills,
    "Redis restart": redis_restart,
    "PG terminate": pg_terminate,
    "API snapshot kill": api_snapshot_kill,
    "API upload kill": api_upload_kill,
    "disk": disk_faults,
}
