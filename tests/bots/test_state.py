"""The bots' runtime state: it survives a restart, threads conversations, and stays bounded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bots.state import (
    MIGRATIONS,
    PROCESSED_KEPT_SECONDS,
    THREAD_GAP_SECONDS,
    TURNS_KEPT,
    BotState,
)
from twin.privacy import AudienceKind

FRIEND, PUBLIC = AudienceKind.FRIEND, AudienceKind.PUBLIC


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_state_survives_a_restart(tmp_path: Path) -> None:
    with BotState.open(tmp_path) as state:
        state.set_paused(True)
        state.mark_processed("telegram", "9001:17")
        talk = state.conversation_for("telegram", "9001", "Tomás", FRIEND, "telegram:9001")
        state.add_turn(talk.id, "user", "Tomás", "How is Biscuit?")
        state.add_turn(talk.id, "assistant", "Iris's twin", "Doing great.")
    with BotState.open(tmp_path) as state:
        assert state.paused
        assert state.was_processed("telegram", "9001:17")
        assert not state.was_processed("discord", "9001:17")
        again = state.conversation_for("telegram", "9001", "Tomás", FRIEND, "telegram:9001")
        assert again.id == talk.id and again.messages == 2
        assert [(t.role, t.text) for t in state.turns(talk.id, 10)] == [
            ("user", "How is Biscuit?"),
            ("assistant", "Doing great."),
        ]
        state.set_paused(False)
        assert not state.paused


def test_a_conversation_ends_after_a_quiet_gap_a_new_audience_or_a_fresh_start(
    tmp_path: Path,
) -> None:
    clock = Clock()
    with BotState(tmp_path / "bots.sqlite", clock) as state:
        first = state.conversation_for("telegram", "9001", "Tomás", FRIEND, "telegram:9001")
        state.add_turn(first.id, "user", "Tomás", "hi")
        clock.now += THREAD_GAP_SECONDS - 60
        assert state.conversation_for("telegram", "9001", "T", FRIEND, "telegram:9001").id == (
            first.id
        )
        clock.now += THREAD_GAP_SECONDS + 1
        second = state.conversation_for("telegram", "9001", "T", FRIEND, "telegram:9001")
        assert second.id != first.id
        # Taken off the allowlist: a stranger's conversation is another thread.
        third = state.conversation_for("telegram", "9001", "T", PUBLIC, "telegram:9001")
        assert third.id != second.id
        assert state.close_conversation("telegram", "9001")
        fourth = state.conversation_for("telegram", "9001", "T", PUBLIC, "telegram:9001")
        assert fourth.id != third.id
        assert fourth.thread == f"bot:telegram:9001:{fourth.id}"
        assert fourth.source_key == "bot:telegram:9001"
        # Only conversations with messages are listed, newest first.
        state.add_turn(fourth.id, "user", "T", "hello again")
        assert [c.id for c in state.recent()] == [fourth.id, first.id]


def test_state_stays_bounded(tmp_path: Path) -> None:
    clock = Clock()
    with BotState(tmp_path / "bots.sqlite", clock) as state:
        talk = state.conversation_for("discord", "42", "#general", FRIEND, "discord:chat:42")
        for i in range(TURNS_KEPT + 15):
            state.add_turn(talk.id, "user", "Priya", f"message {i}", in_context=i % 2 == 0)
        kept = state.turns(talk.id, 1000)
        assert len(kept) == TURNS_KEPT and kept[-1].text == f"message {TURNS_KEPT + 14}"
        context = state.turns(talk.id, 4, context_only=True)
        assert [t.text for t in context] == [f"message {i}" for i in (68, 70, 72, 74)]
        assert state.turns(talk.id, 0) == []

        state.mark_processed("discord", "42:1")
        clock.now += PROCESSED_KEPT_SECONDS + 1
        state.mark_processed("discord", "42:2")
        assert not state.was_processed("discord", "42:1")
        assert state.was_processed("discord", "42:2")

        assert state.delete_conversation(talk.id)
        assert state.conversation(talk.id) is None and state.turns(talk.id, 10) == []


def test_a_state_file_from_before_versioning_is_adopted_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "bots.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE flags (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO flags VALUES ('paused', '1')")
    conn.commit()
    conn.close()
    with BotState(path) as state:
        assert state.paused
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()


def test_a_state_file_from_a_newer_twin_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "bots.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match=r"bots' state .*bots\.sqlite.* newer"):
        BotState(path)
