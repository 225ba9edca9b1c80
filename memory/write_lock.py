"""Taking SQLite's write lock: a writer that finds the memory database busy waits its turn.

Several processes share one home (the CLI, the MCP server, the bots, a training run). SQLite lets
one of them write at a time; the others wait here, say once that they are waiting, and give up
with a clear `StoreBusyError` after a generous wait instead of a raw `database is locked`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_WRITE_WAIT = 300.0
"""Seconds a write waits for another writer before giving up."""

QUIET_WAIT = 1.0
"""Seconds a write waits before saying that it is waiting (a short write of another process
should not print anything)."""


class StoreBusyError(RuntimeError):
    """Another writer held the memory database for longer than this one was willing to wait."""


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether `exc` says that another connection holds a lock (SQLITE_BUSY or SQLITE_LOCKED)."""
    primary = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # extended codes keep it in the low byte
    return primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def begin_write(conn: sqlite3.Connection, db_path: Path, wait: float) -> None:
    """Start a write transaction (`BEGIN IMMEDIATE`) on `conn`, waiting up to `wait` seconds for
    the lock. Raises `StoreBusyError` naming the database when the wait runs out."""
    deadline = time.monotonic() + wait
    announced = False
    try:
        while True:
            remaining = max(deadline - time.monotonic(), 0.0)
            _busy_timeout(conn, remaining if announced else min(remaining, QUIET_WAIT))
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise busy_error(db_path, wait) from exc
            if not announced:
                log.warning("waiting for another writer (an import?) to finish with %s…", db_path)
                announced = True
    finally:
        # Statements inside a transaction never wait; the odd autocommit write outside one
        # should wait as long as a transaction would.
        _busy_timeout(conn, wait)


def busy_error(db_path: Path, wait: float) -> StoreBusyError:
    """The error for a write that waited `wait` seconds for the lock in vain."""
    return StoreBusyError(
        f"the memory database {db_path} is busy: another writer (an import?) held it for more"
        f" than {wait:g} s. Nothing was written; try again when it has finished."
    )


def _busy_timeout(conn: sqlite3.Connection, seconds: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
