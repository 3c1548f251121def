"""The ``roisearch`` exit statuses, defined once (the CLI help epilog and docs/cli.md list them).

Scripts can rely on them: 0 means everything asked for was done; 1 means the command ran but
something failed (an ingestion or some of its items, a check that found a mismatch, a server
that could not start, a storage failure); 2 means the command was not run as asked (bad
usage: an unknown option, a missing file, an invalid setting or value).
"""

from __future__ import annotations

OK = 0
FAILURE = 1
USAGE = 2  # click's own status for usage errors, kept for ours

EPILOG = (
    "Exit status: 0 ok; 1 failure (an ingestion or some of its items failed, a check found "
    "a mismatch, the server could not start, the disk is full); 2 bad usage or configuration "
    "(unknown option, missing file, invalid setting). See docs/cli.md."
)
