"""How a memory is shown to the model: dated as people write dates."""

from __future__ import annotations

from datetime import UTC, datetime

from core.calendar import spoken_date
from memory.models import Kind, Memory, Visibility
from twin.tasks import ContextMemory


def test_dates_are_written_as_people_write_them() -> None:
    assert spoken_date(datetime(2026, 3, 15, 9, 5, tzinfo=UTC)) == "15 March 2026"
    assert spoken_date(datetime(2025, 12, 1, tzinfo=UTC)) == "1 December 2025"


def test_a_context_memory_carries_its_spoken_date() -> None:
    when = datetime(2026, 10, 6, 12, 0, tzinfo=UTC)
    memory = Memory(
        id="m1",
        text="InkSpot public launch is today",
        kind=Kind.CHAT,
        source_key="telegram:chat:1",
        source_name="Telegram",
        source_id="1",
        author="Iris",
        author_id=None,
        is_owner=True,
        timestamp=when,
        thread=None,
        reply_to=None,
        visibility=Visibility.FRIENDS,
        shared_with=None,
        content_hash="-",
        created_at=when,
    )
    shown = ContextMemory.of(memory)
    assert shown.when == "6 October 2026"
    assert shown.line(200) == "6 October 2026 Iris: InkSpot public launch is today"
