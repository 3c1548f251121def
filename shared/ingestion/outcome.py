"""What an ingestion added and what it left out, in a form a person can read at a glance.

- objects *added* by a run (objects on its images created after a given object id) next to
  the collection's total: "objects 64" for a run that added 14 misleads;
- skipped or failed items grouped by reason, each reason with its members folded into a few
  patterns (``labels/*.txt (100), *.json (23), classes.txt (1)``) instead of one row each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db.models import DetectedObject, IngestionItem, ItemStatus

# Members read to build the patterns of one reason; counts stay exact beyond it (SQL).
PATTERN_SAMPLE = 100_000
PATTERNS_SHOWN = 5

REASON_WORDS = {
    "not_an_image": "not images",
    "empty_file": "empty files",
}


@dataclass(frozen=True)
class MemberPattern:
    pattern: str
    count: int


@dataclass(frozen=True)
class ReasonGroup:
    """Items of one status sharing one error code."""

    code: str
    reason: str  # words for the code ("not images"), or the code itself
    count: int
    patterns: list[MemberPattern] = field(default_factory=list)
    more_patterns: int = 0  # patterns not listed (beyond PATTERNS_SHOWN)

    def line(self) -> str:
        """``124 not images: labels/*.txt (100), *.json (23), classes.txt (1)``."""
        listed = ", ".join(f"{p.pattern} ({p.count})" for p in self.patterns)
        more = f", … {self.more_patterns} more pattern(s)" if self.more_patterns else ""
        return f"{self.count} {self.reason}: {listed}{more}"


def member_patterns(members: Iterable[str]) -> list[MemberPattern]:
    """Fold member paths into ``folder/*.ext`` patterns, largest first.

    Members in the same folder with the same extension form one pattern; a pattern with a
    single member is shown as that member's path.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for member in members:
        path = PurePosixPath(member.replace("\\", "/"))
        folder = "" if str(path.parent) == "." else str(path.parent)
        groups.setdefault((folder, path.suffix.lower()), []).append(member)
    patterns = []
    for (folder, suffix), names in groups.items():
        folded = f"{folder}/*{suffix}" if folder else f"*{suffix}"
        pattern = names[0] if len(names) == 1 else folded
        patterns.append(MemberPattern(pattern, len(names)))
    return sorted(patterns, key=lambda p: (-p.count, p.pattern))


def reason_groups(session: Session, ingestion_id: int, status: ItemStatus) -> list[ReasonGroup]:
    """The ingestion's items in ``status`` grouped by error code, largest group first."""
    counts = Counter[str]()
    for code, n in session.execute(
        select(IngestionItem.error_code, func.count())
        .where(IngestionItem.ingestion_id == ingestion_id, IngestionItem.status == status)
        .group_by(IngestionItem.error_code)
    ):
        counts[code or "unknown"] += int(n)
    groups = []
    for code, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        condition = (
            IngestionItem.error_code.is_(None)
            if code == "unknown"
            else IngestionItem.error_code == code
        )
        members = session.scalars(
            select(IngestionItem.member)
            .where(
                IngestionItem.ingestion_id == ingestion_id,
                IngestionItem.status == status,
                condition,
            )
            .order_by(IngestionItem.seq)
            .limit(PATTERN_SAMPLE)
        )
        patterns = member_patterns(members)
        groups.append(
            ReasonGroup(
                code=code,
                reason=REASON_WORDS.get(code, code),
                count=count,
                patterns=patterns[:PATTERNS_SHOWN],
                more_patterns=max(0, len(patterns) - PATTERNS_SHOWN),
            )
        )
    return groups


def last_object_id(session: Session) -> int:
    """The highest object id so far (0 when there is none): a run's "before" mark."""
    return int(session.scalar(select(func.max(DetectedObject.id))) or 0)


def objects_added(session: Session, ingestion_id: int, after_object_id: int) -> int:
    """Objects on the ingestion's images created after ``after_object_id``.

    Images already in the collection (same content) are linked, not recomputed: their
    objects are not added by this run, though they count among its images' objects.
    """
    image_ids = (
        select(IngestionItem.image_id)
        .where(IngestionItem.ingestion_id == ingestion_id, IngestionItem.image_id.is_not(None))
        .distinct()
        .scalar_subquery()
    )
    return int(
        session.scalar(
            select(func.count())
            .select_from(DetectedObject)
            .where(DetectedObject.image_id.in_(image_ids), DetectedObject.id > after_object_id)
        )
        or 0
    )


def collection_objects(session: Session) -> int:
    """Every object in the collection (all embedding spaces)."""
    return int(session.scalar(select(func.count()).select_from(DetectedObject)) or 0)
