"""The one error type of reports and exports: a stable code plus a message for people."""

from __future__ import annotations

from typing import Any


class ReportError(Exception):
    """Bad parameters or data for a report/export; ``code`` is stable, ``message`` names the item.

    Codes: ``space_required``, ``space_not_found``, ``unknown_class``, ``ingestion_not_found``,
    ``empty_selection``, ``k_too_large``, ``bad_vector``, ``invalid_split``,
    ``report_not_found``.
    """

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details
