"""The shape of a progress callback, shared by every layer that reports long work."""

from __future__ import annotations

from collections.abc import Callable

# Called with (done, total) as work proceeds; how it is shown (a bar, log lines) is the caller's.
Progress = Callable[[int, int], None]
