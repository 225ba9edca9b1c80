"""How a memory is shown to the model: dated as people write dates."""

from __future__ import annotations

from datetime import UTC, datetime

from core.calendar import spoken_date
from memory.models import Kind
from tests.stored import stored_memory
from twin.tasks import ContextMemory


def test_dates_are_written_as_people_write_them() -> None:
    assert spoken_date(datetime(2026, 3, 15, 9, 5, tzinfo=UTC)) == "15 March 2026"
    assert spoken_date(datetime(2025, 12, 1, tzinfo=UTC)) == "1 December 2025"


def test_a_context_memory_carries_its_spoken_date() -> None:
    when = datetime(2026, 10, 6, 12, 0, tzinfo=UTC)
    memory = stored_memory(
        "InkSpot public launch is today",
        kind=Kind.CHAT,
        source_key="telegram:chat:1",
        source_name="Telegram",
        author="Iris",
        timestamp=when,
    )
    shown = ContextMemory.of(memory)
    assert shown.when == "6 October 2026"
    assert shown.line(200) == "6 October 2026 Iris: InkSpot public launch is today"
