"""The search filter the API builds: plain data, importable without loading FAISS."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SearchFilter:
    """Restrictions on the objects a search may return; ``None`` means "no restriction".

    ``min_box_side`` is in original-image pixels (``min(x2 - x1, y2 - y1) >= min_box_side``);
    ``min_score`` is the detector confidence; ``min_similarity`` the cosine similarity to
    the query. ``ingestion_ids`` keeps objects of images that belong to any of those
    ingestions; ``image_ids`` objects of those images (both given: the intersection).
    """

    class_ids: list[int] | None = None
    min_score: float | None = None
    ingestion_ids: list[int] | None = None
    min_box_side: float | None = None
    min_similarity: float | None = None
    exclude_object_ids: list[int] | None = None
    image_ids: list[int] | None = None

    @property
    def _narrowed_by_metadata(self) -> bool:
        """Anything but excluded ids narrows the candidates (``min_similarity`` does not)."""
        return any(
            value is not None
            for value in (
                self.class_ids,
                self.min_score,
                self.ingestion_ids,
                self.min_box_side,
                self.image_ids,
            )
        )

    @property
    def restricts_candidates(self) -> bool:
        """True if the filter narrows the candidate set (``min_similarity`` does not)."""
        return self._narrowed_by_metadata or self.exclude_object_ids is not None

    @property
    def only_excludes(self) -> bool:
        """True if the only candidate restriction is a list of excluded ids (e.g. the query
        object itself): searching ``k + len(excluded)`` and dropping them is exact and
        avoids building a candidate mask over the whole space per query."""
        return bool(self.exclude_object_ids) and not self._narrowed_by_metadata
