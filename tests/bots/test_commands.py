"""`twin bot telegram` and `twin bot discord` run against the stand-ins until told to stop."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bots.commands import bot_app
from tests.bots.conftest import FRIEND_TG, OWNER_DISCORD, OWNER_TG
from tests.bots.fake_discord import DiscordUser, FakeDiscord
from tests.bots.fake_telegram import FakeTelegram
from tests.twin_fixtures import register_model

runner = CliRunner()


class LoopThread:
    """An event loop in a background thread, for the stand-ins while the CLI owns the main
    thread (and its signal handlers)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def background() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture
def bot_home(persona_home: Path, tiny_gguf_path: Path) -> Path:
    """The persona's home with a model and a friend on Telegram."""
    register_model(persona_home, tiny_gguf_path)
    with (persona_home / "twin.toml").open("a", encoding="utf-8") as config:
        config.write(f'\n[bots.friends]\ntelegram = ["{FRIEND_TG.id}"]\n')
    return persona_home


def stop_when(background: LoopThread, conversation: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """In a thread: once the CLI has set its signal handlers (the bot is starting), hold the
    `conversation`, then send this process the SIGTERM the CLI stops on."""

    def wait_then_stop() -> None:
        deadline = time.monotonic() + 120
        while signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            if time.monotonic() > deadline:
                return  # the CLI never got as far as running a bot; it returns by itself
            time.sleep(0.05)
        try:
            background.run(conversation(), timeout=120)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait_then_stop, daemon=True).start()


def test_a_missing_token_is_a_clear_error(tmp_path: Path) -> None:
    env = {"TWIN_BOTS__TELEGRAM_TOKEN": "", "TWIN_BOTS__DISCORD_TOKEN": ""}
    result = runner.invoke(bot_app, ["telegram", "--home", str(tmp_path)], env=env)
    assert result.exit_code == 1
    assert "no Telegram bot token" in result.output and "TWIN_BOTS__TELEGRAM_TOKEN" in result.output
    result = runner.invoke(bot_app, ["discord", "--home", str(tmp_path)], env=env)
    assert result.exit_code == 1 and "TWIN_BOTS__DISCORD_TOKEN" in result.output


def test_twin_bot_telegram_runs_until_stopped(bot_home: Path, background: LoopThread) -> None:
    api = FakeTelegram()
    background.run(api.start())

    async def conversation() -> None:
        await api.user_says(OWNER_TG, "/start")
        await api.user_says(FRIEND_TG, "How is Biscuit?")
        await api.wait_for_sent(2, timeout=60)

    stop_when(background, conversation)
    result = runner.invoke(
        bot_app,
        ["telegram", "--home", str(bot_home), "--api-url", api.root_url],
        env={"TWIN_BOTS__TELEGRAM_TOKEN": api.token},
    )
    background.run(api.stop())
    assert result.exit_code == 0, result.output
    assert "/pause" in api.sent_to(OWNER_TG.id)[0]
    assert len(api.sent_to(FRIEND_TG.id)) == 1
    assert (bot_home / "bots.sqlite").exists()


def test_twin_bot_discord_runs_until_stopped(bot_home: Path, background: LoopThread) -> None:
    api = FakeDiscord()
    background.run(api.start())
    owner = DiscordUser(OWNER_DISCORD, "iris.calder", "Iris")

    async def conversation() -> None:
        await api.user_says(owner, "/help")
        await api.wait_for_sent(1, timeout=60)

    stop_when(background, conversation)
    result = runner.invoke(
        bot_app,
        [
            "discord",
            "--home",
            str(bot_home),
            "--api-url",
            api.api_base,
            "--gateway-url",
            api.gateway_url,
        ],
        env={"TWIN_BOTS__DISCORD_TOKEN": api.token},
    )
    background.run(api.stop())
    assert result.exit_code == 0, result.output
    assert "/pause" in api.sent_to(owner.dm_channel)[0]
