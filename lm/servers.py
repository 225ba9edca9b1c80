"""What this process has learnt about each OpenAI-compatible server, by base URL.

Every client of one server shares it, whichever role or thread it serves: the response format
the server refused is asked for once per process, not once per client, and a server found
gone is known to be gone by every client at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class ServerState:
    """One server's record: the first structured-output mode still worth asking for, and
    why it was last unreachable ("" while it answers)."""

    base_url: str
    format_level: int = 0
    down: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def refused_format(self, level: int) -> None:
        """The server refused the format at `level`: ask for the next one from now on."""
        with self._lock:
            self.format_level = max(self.format_level, level + 1)

    def answered(self) -> None:
        """The server sent an HTTP response: it is up."""
        with self._lock:
            self.down = ""

    def went_down(self, reason: str) -> None:
        """A connection to the server was refused, reset or dropped."""
        with self._lock:
            self.down = reason


_STATES: dict[str, ServerState] = {}
_STATES_LOCK = threading.Lock()


def server_state(base_url: str) -> ServerState:
    """The shared record of the server at `base_url` (created on first use)."""
    key = base_url.rstrip("/")
    with _STATES_LOCK:
        state = _STATES.get(key)
        if state is None:
            state = _STATES[key] = ServerState(key)
        return state
