"""The bots' own runtime state, in `<home>/bots.sqlite`: whether the bot is paused, per-user
quotas, which platform messages were already handled, and the conversations with their recent
turns (the short-term context of the next answer, and what the owner's /recent shows).

L0 memory is the long-term record of every exchange; this file only keeps what running a bot
needs, so it can be deleted without losing a memory (the bot then forgets its pause flag,
quotas and the current threads, nothing else).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from memory.migrations import migrate
from twin.privacy import AudienceKind

STATE_FILE = "bots.sqlite"
# A conversation goes quiet after this long without a message; the next one starts a new thread.
THREAD_GAP_SECONDS = 3 * 3600
# Turns kept per conversation: more than any context needs, enough for the owner's review.
TURNS_KEPT = 60
# Handled message ids are kept this long: platforms re-deliver within hours, not days.
PROCESSED_KEPT_SECONDS = 7 * 86400
MINUTE = 60.0
DAY = 86400.0

# The state's schema, one script per version (see `memory.migrations.migrate`); never edit a
# shipped step, add the next. The first keeps IF NOT EXISTS: files from before versioning
# already hold these tables at version 0.
MIGRATIONS = [
    """
CREATE TABLE IF NOT EXISTS flags (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS processed (
    platform TEXT NOT NULL, message_key TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (platform, message_key)
);
CREATE INDEX IF NOT EXISTS processed_at ON processed (at);
CREATE TABLE IF NOT EXISTS usage (principal TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS usage_principal_at ON usage (principal, at);
CREATE TABLE IF NOT EXISTS quota_notices (
    principal TEXT NOT NULL, window TEXT NOT NULL, until REAL NOT NULL,
    PRIMARY KEY (principal, window)
);
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    platform TEXT NOT NULL, chat_id TEXT NOT NULL, title TEXT NOT NULL,
    audience TEXT NOT NULL, principal TEXT,
    started_at REAL NOT NULL, last_at REAL NOT NULL,
    messages INTEGER NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS conversations_chat ON conversations (platform, chat_id, last_at);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role TEXT NOT NULL, speaker TEXT NOT NULL, text TEXT NOT NULL, at REAL NOT NULL,
    in_context INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS turns_conversation ON turns (conversation_id, id);
""",
]


@dataclass(frozen=True)
class Quota:
    """Whether one more message from a user is allowed; if not, which limit it hit, whether to
    tell them (only the first time in a window), and when they may write again."""

    allowed: bool
    window: Literal["", "minute", "day"] = ""
    notify: bool = False
    retry_in: float = 0.0


@dataclass(frozen=True)
class Conversation:
    """One thread of messages in one chat, with one audience."""

    id: int
    platform: str
    chat_id: str
    title: str
    audience: AudienceKind
    principal: str | None
    started_at: datetime
    last_at: datetime
    messages: int

    @property
    def thread(self) -> str:
        """The thread id its memories carry in L0."""
        return f"bot:{self.platform}:{self.chat_id}:{self.id}"

    @property
    def source_key(self) -> str:
        """The L0 source its chat's memories belong to."""
        return f"bot:{self.platform}:{self.chat_id}"


@dataclass(frozen=True)
class Turn:
    """One message of a conversation: the user's or the twin's."""

    role: Literal["user", "assistant"]
    speaker: str
    text: str
    at: datetime
    in_context: bool = True


class BotState:
    """Runtime state of the bots, shared by every platform the twin runs on."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        migrate(self._conn, MIGRATIONS, what=f"the bots' state ({path})")

    @classmethod
    def open(cls, home: Path, clock: Callable[[], float] = time.time) -> BotState:
        """The state file of the twin whose home is `home`."""
        return cls(home / STATE_FILE, clock)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> BotState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    # -- pause ---------------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        row = self._conn.execute("SELECT value FROM flags WHERE name = 'paused'").fetchone()
        return row is not None and row[0] == "1"

    def set_paused(self, paused: bool) -> None:
        self._write(
            "INSERT INTO flags (name, value) VALUES ('paused', ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            ("1" if paused else "0",),
        )

    # -- messages already handled --------------------------------------------------------------

    def was_processed(self, platform: str, message_key: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM processed WHERE platform = ? AND message_key = ?",
            (platform, message_key),
        ).fetchone()
        return row is not None

    def mark_processed(self, platform: str, message_key: str) -> None:
        """Remember that a platform message was handled, so a re-delivery is not answered."""
        now = self.clock()
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO processed (platform, message_key, at) VALUES (?, ?, ?)",
                (platform, message_key, now),
            )
            self._conn.execute(
                "DELETE FROM processed WHERE at < ?", (now - PROCESSED_KEPT_SECONDS,)
            )

    # -- quotas --------------------------------------------------------------------------------

    def take_quota(self, principal: str, per_minute: int, per_day: int) -> Quota:
        """Count one message from `principal` if their limits allow it."""
        now = self.clock()
        with self._lock:
            self._conn.execute("DELETE FROM usage WHERE at < ?", (now - DAY,))
            minute = self._conn.execute(
                "SELECT count(*), min(at) FROM usage WHERE principal = ? AND at > ?",
                (principal, now - MINUTE),
            ).fetchone()
            day = self._conn.execute(
                "SELECT count(*), min(at) FROM usage WHERE principal = ?", (principal,)
            ).fetchone()
            if minute[0] >= per_minute:
                window, retry_in = "minute", minute[1] + MINUTE - now
            elif day[0] >= per_day:
                window, retry_in = "day", day[1] + DAY - now
            else:
                self._conn.execute(
                    "INSERT INTO usage (principal, at) VALUES (?, ?)", (principal, now)
                )
                return Quota(True)
            notice = self._conn.execute(
                "SELECT until FROM quota_notices WHERE principal = ? AND window = ?",
                (principal, window),
            ).fetchone()
            notify = notice is None or notice[0] <= now
            if notify:
                self._conn.execute(
                    "INSERT INTO quota_notices (principal, window, until) VALUES (?, ?, ?)"
                    " ON CONFLICT(principal, window) DO UPDATE SET until = excluded.until",
                    (principal, window, now + retry_in),
                )
            return Quota(False, window, notify, max(retry_in, 0.0))

    # -- conversations ---------------------------------------------------------------------------

    def conversation_for(
        self,
        platform: str,
        chat_id: str,
        title: str,
        audience: AudienceKind,
        principal: str | None,
    ) -> Conversation:
        """The chat's current conversation, or a new one when the last went quiet, was closed,
        or had another audience."""
        now = self.clock()
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM conversations WHERE platform = ? AND chat_id = ?"
                " ORDER BY id DESC LIMIT 1",
                (platform, chat_id),
            ).fetchone()
            current = (
                row is not None
                and not row["closed"]
                and row["audience"] == audience
                and row["principal"] == principal
                and now - row["last_at"] < THREAD_GAP_SECONDS
            )
            if current:
                self._conn.execute(
                    "UPDATE conversations SET last_at = ?, title = ? WHERE id = ?",
                    (now, title, row["id"]),
                )
                conversation_id = row["id"]
            else:
                cursor = self._conn.execute(
                    "INSERT INTO conversations (platform, chat_id, title, audience, principal,"
                    " started_at, last_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (platform, chat_id, title, audience, principal, now, now),
                )
                conversation_id = int(cursor.lastrowid or 0)
        found = self.conversation(conversation_id)
        assert found is not None
        return found

    def close_conversation(self, platform: str, chat_id: str) -> bool:
        """End the chat's current conversation; the next message starts a new one."""
        cursor = self._write(
            "UPDATE conversations SET closed = 1 WHERE platform = ? AND chat_id = ? AND closed = 0",
            (platform, chat_id),
        )
        return cursor.rowcount > 0

    def conversation(self, conversation_id: int) -> Conversation | None:
        row = self._conn.execute(
            "SELECT * FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        return _conversation(row) if row else None

    def recent(self, limit: int = 10) -> list[Conversation]:
        """The conversations with the latest messages first."""
        rows = self._conn.execute(
            "SELECT * FROM conversations WHERE messages > 0 ORDER BY last_at DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [_conversation(r) for r in rows]

    def delete_conversation(self, conversation_id: int) -> bool:
        cursor = self._write("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        return cursor.rowcount > 0

    def add_turn(
        self,
        conversation_id: int,
        role: Literal["user", "assistant"],
        speaker: str,
        text: str,
        *,
        in_context: bool = True,
    ) -> None:
        """Append a message to a conversation; `in_context=False` keeps it out of the context
        of later answers (it stays visible to the owner)."""
        now = self.clock()
        with self._lock:
            self._conn.execute(
                "INSERT INTO turns (conversation_id, role, speaker, text, at, in_context)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, role, speaker, text, now, int(in_context)),
            )
            self._conn.execute(
                "UPDATE conversations SET messages = messages + 1, last_at = ? WHERE id = ?",
                (now, conversation_id),
            )
            self._conn.execute(
                "DELETE FROM turns WHERE conversation_id = ? AND id NOT IN (SELECT id FROM turns"
                " WHERE conversation_id = ? ORDER BY id DESC LIMIT ?)",
                (conversation_id, conversation_id, TURNS_KEPT),
            )

    def turns(self, conversation_id: int, limit: int, *, context_only: bool = False) -> list[Turn]:
        """The last `limit` turns of a conversation, oldest first."""
        if limit <= 0:
            return []
        where = " AND in_context = 1" if context_only else ""
        rows = self._conn.execute(
            f"SELECT * FROM turns WHERE conversation_id = ?{where} ORDER BY id DESC LIMIT ?",
            (conversation_id, limit),
        ).fetchall()
        return [
            Turn(r["role"], r["speaker"], r["text"], _when(r["at"]), bool(r["in_context"]))
            for r in reversed(rows)
        ]


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        platform=row["platform"],
        chat_id=row["chat_id"],
        title=row["title"],
        audience=AudienceKind(row["audience"]),
        principal=row["principal"],
        started_at=_when(row["started_at"]),
        last_at=_when(row["last_at"]),
        messages=row["messages"],
    )
