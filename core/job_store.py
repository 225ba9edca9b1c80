"""Where the retraining job is kept (an APScheduler job store in SQLite), and when it runs next.

The scheduler itself lives with training (`training.schedule`); serving only needs to say when
the next retraining is due, which it reads straight from the job table, so that serving never
imports (or unpickles) training code.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

RETRAIN_JOB = "retrain"
JOBS_TABLE = "twin_jobs"


def job_store_url(path: Path) -> str:
    """The SQLAlchemy URL of the persistent job store (SQLite) a twin's schedule lives in."""
    return f"sqlite:///{path}"


def next_retraining(path: Path) -> datetime | None:
    """When the retraining job runs next, or None if there is no schedule (yet)."""
    if not path.exists():
        return None
    with closing(sqlite3.connect(path)) as conn:
        try:
            row = conn.execute(
                f"SELECT next_run_time FROM {JOBS_TABLE} WHERE id = ?", (RETRAIN_JOB,)
            ).fetchone()
        except sqlite3.OperationalError:  # no table: the scheduler never ran here
            return None
    return datetime.fromtimestamp(row[0], UTC) if row and row[0] is not None else None
