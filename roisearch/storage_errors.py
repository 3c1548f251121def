"""Turn "the disk cannot take this" failures into one clear line instead of a traceback.

A full disk, a read-only mount or a path component that is a file are facts about the
machine, not bugs: the user needs the path and the fix, and the process must exit non-zero.
Everything else still propagates with its traceback (those are bugs worth reporting).
"""

from __future__ import annotations

import errno

from sqlalchemy.exc import OperationalError

# errno values that mean "this location cannot be written", whatever the operation was
STORAGE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}

# what SQLite reports for the same conditions (it has no errno on the exception)
SQLITE_MESSAGES = {
    "database or disk is full": "the disk is full",
    "attempt to write a readonly database": "the database file is read-only",
    "unable to open database file": "the database file cannot be opened or created",
    "disk i/o error": "the disk reported an I/O error (often: full)",
}

HINT = "free some space, or point ROISEARCH_DATA_DIR at a writable folder"


def storage_failure(exc: BaseException) -> str | None:
    """A one-line explanation if ``exc`` (or its cause) is a storage failure, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_ERRNOS:
            where = f" ({current.filename})" if current.filename else ""
            return f"cannot write{where}: {STORAGE_ERRNOS[current.errno]}; {HINT}"
        if isinstance(current, OperationalError):
            text = str(current.orig).lower()
            for needle, meaning in SQLITE_MESSAGES.items():
                if needle in text:
                    return f"database write failed: {meaning}; {HINT}"
        current = current.__cause__ or current.__context__
    return None
