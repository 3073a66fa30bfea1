"""Which errors a retry can fix: the line between Dagster's retries and failing at once.

A dropped connection, a locked SQLite file or a deadlock may pass on the next attempt; a missing
table, a bad mapping or a bug fails the same way every time, and retrying it only delays the
alert. The orchestration layer turns a permanent error into `dagster.Failure(allow_retries=False)`.
"""

from __future__ import annotations

import sqlalchemy as sa

# PostgreSQL SQLSTATE classes and codes a retry can outlast: connection exceptions (08),
# transaction rollbacks such as deadlocks and serialization failures (40), insufficient
# resources (53), operator intervention such as an admin shutdown (57), lock not available.
TRANSIENT_SQLSTATE_PREFIXES = ("08", "40", "53", "57")
TRANSIENT_SQLSTATES = frozenset({"55P03"})
# SQLite reports a lock and a missing table with the same exception class, and a PostgreSQL
# connection that never opened has no SQLSTATE: tell those apart by the driver's text
TRANSIENT_MESSAGES = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "connection refused",
    "could not connect",
    "server closed the connection",
    "terminating connection",
    "connection timeout",
)


def _sqlstate(error: sa.exc.DBAPIError) -> str | None:
    original = error.orig
    return getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)


def is_transient(error: BaseException) -> bool:
    """True when the same call may succeed later without anyone changing anything."""
    if isinstance(error, sa.exc.DisconnectionError | sa.exc.TimeoutError):
        return True
    if isinstance(error, sa.exc.DBAPIError):
        if error.connection_invalidated:
            return True
        state = _sqlstate(error)
        if state is not None:
            return state in TRANSIENT_SQLSTATES or state.startswith(TRANSIENT_SQLSTATE_PREFIXES)
        if isinstance(error, sa.exc.OperationalError):
            text = str(error.orig).lower()
            return any(message in text for message in TRANSIENT_MESSAGES)
        return False
    return isinstance(error, ConnectionError | TimeoutError)
