"""The error of reports and exports: a stable code plus a message for people."""

from __future__ import annotations

from shared.errors import InvalidInput


class ReportError(InvalidInput):
    """Bad parameters or data for a report/export; ``code`` is stable, ``message`` names the item.

    Codes: ``empty_selection``, ``k_too_large``, ``bad_vector``, ``invalid_split``,
    ``report_not_found``. A selection that names what is not there raises
    :class:`shared.selection.SelectionError` (``space_required``, ``space_not_found``,
    ``unknown_class``, ``ingestion_not_found``, ``empty_selection``).
    """
