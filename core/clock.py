"""Time as an input.

Whatever depends on "now" (the recent-status bio, when a memory was added, a model's age, the
retraining schedule) takes a `Clock`, so that tests and benchmarks fix the day they run on and
the product itself reads the system clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the time: always an aware datetime in UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK = SystemClock()


@dataclass
class FixedClock:
    """A clock that says what it is told: for tests, benchmarks and reproducible runs."""

    when: datetime

    def __post_init__(self) -> None:
        if self.when.tzinfo is None:
            self.when = self.when.replace(tzinfo=UTC)

    def now(self) -> datetime:
        return self.when

    def advance(self, delta: timedelta) -> None:
        """Move the clock on by `delta`."""
        self.when += delta
