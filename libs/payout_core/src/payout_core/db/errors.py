"""What PostgreSQL's errors mean to the services: "unavailable right now" (retry later: 503)
as against a real bug (500), and the SQLSTATEs the code reacts to (named once, here)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# Refused or reset sockets, connect timeouts, a closed connection, an exhausted pool.
UNAVAILABLE_TYPES = (OperationalError, InterfaceError, PoolTimeout, OSError, TimeoutError)
# SQLSTATEs of a server that is starting, stopping or full. asyncpg raises these at connect as
# plain PostgresErrors, which SQLAlchemy wraps in a bare DBAPIError.
UNAVAILABLE_SQLSTATE_CLASSES = ("08",)  # connection exception
# read_only_sql_transaction: the server is a standby now (a failover demoted it), see engine.py.
READ_ONLY_SQLSTATE = "25006"
# lock_not_available: a lock_timeout ran out (the API waits this way for a held idempotency key).
LOCK_NOT_AVAILABLE_SQLSTATE = "55P03"
UNAVAILABLE_SQLSTATES = frozenset(
    {
        READ_ONLY_SQLSTATE,
        "53300",  # too_many_connections
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, shutting down, in recovery)
    }
)


def sqlstate_of(exc: BaseException | None) -> str:
    """The SQLSTATE of a driver error, or of the one SQLAlchemy wraps; "" for anything else."""
    orig = getattr(exc, "orig", None) if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(orig, "sqlstate", None) or getattr(exc, "sqlstate", None)
    return str(sqlstate or "")


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, UNAVAILABLE_TYPES):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # Also a driver error SQLAlchemy passes on unwrapped: one raised while it sets up a pooled
    # connection (a failover closes it "in the middle of operation", SQLSTATE 08003).
    sqlstate = sqlstate_of(exc)
    return sqlstate in UNAVAILABLE_SQLSTATES or sqlstate.startswith(UNAVAILABLE_SQLSTATE_CLASSES)
