"""Running bots until the process is told to stop: one or several platforms on one event loop."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Sequence
from contextlib import suppress
from typing import Protocol

log = logging.getLogger(__name__)


class RunningBot(Protocol):
    """A platform adapter: connects on `start`, disconnects cleanly on `stop`."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def run_until_stopped(bots: Sequence[RunningBot], stop: asyncio.Event | None = None) -> None:
    """Start every bot, run until `stop` is set (or SIGINT/SIGTERM arrives), stop them all."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError):  # no signal handlers on this platform's loop
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
    started: list[RunningBot] = []
    try:
        for bot in bots:
            await bot.start()
            started.append(bot)
        await stop.wait()
        log.info("stopping")
    finally:
        for bot in reversed(started):
            try:
                await bot.stop()
            except Exception:
                log.exception("a bot did not stop cleanly")
        for sig in handled:
            loop.remove_signal_handler(sig)
