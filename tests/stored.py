"""A stored `Memory` for tests that need one without a store: every field has a plain default,
and a test names only the fields it is about."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from memory.models import Kind, Memory, Visibility

WHEN = datetime(2026, 5, 1, tzinfo=UTC)


def stored_memory(text: str, **fields: Any) -> Memory:
    """A memory saying `text`: an owner's note visible to friends, unless `fields` say
    otherwise (`created_at` follows `timestamp`)."""
    values: dict[str, Any] = {
        "id": "m_1",
        "text": text,
        "kind": Kind.NOTE,
        "source_key": "notes",
        "source_name": "Notes",
        "source_id": "1",
        "author": None,
        "author_id": None,
        "is_owner": True,
        "timestamp": WHEN,
        "thread": None,
        "reply_to": None,
        "visibility": Visibility.FRIENDS,
        "shared_with": None,
        "content_hash": "h",
    }
    values.update(fields)
    values.setdefault("created_at", values["timestamp"] or WHEN)
    return Memory(**values)
