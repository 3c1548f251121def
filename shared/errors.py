"""The one error family of every layer: a stable ``code``, a ``message`` for people, ``details``.

Subclasses say what kind of failure it is, so that each boundary maps it once: the API by
subclass to an HTTP status (``api/errors.py``), the CLI to an exit status
(``roisearch/errors.py``). Codes never change when a class moves; messages name the item and
the reason, never a server path.
"""

from __future__ import annotations

from typing import Any


class CodedError(Exception):
    """An expected failure with a stable ``code`` (snake_case), a ``message`` and ``details``
    (JSON-serialisable, or ``None``)."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details


class NotFound(CodedError):  # noqa: N818 - the issue's names, read as kinds
    """A named item (object, image, ingestion, report, ...) does not exist."""


class InvalidInput(CodedError):  # noqa: N818 - the issue's names, read as kinds
    """The request or the data it names cannot be used as given (bad box, unknown class...)."""


class Unsupported(CodedError):  # noqa: N818 - the issue's names, read as kinds
    """Well-formed but of a kind roisearch does not handle (a file that is not an image...)."""


class Conflict(CodedError):  # noqa: N818 - the issue's names, read as kinds
    """The item is not in a state that allows this now (a report that is not done...)."""


class Unavailable(CodedError):  # noqa: N818 - the issue's names, read as kinds
    """A resource the answer needs is missing or busy (the model, the queue); retry later."""
