"""The real python-telegram-bot client against the Bot API stand-in: whole conversations, long
replies, flood control and server errors, rate limits, restarts."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession

from bots.core import BotCore, Outcome, Texts
from bots.state import BotState
from bots.telegram_bot import TelegramBot, Webhook
from memory.store import MemoryFilter
from serving.service import Twin
from tests.bots.conftest import (
    FRIEND_TG,
    OWNER_TG,
    STRANGER_TG,
    Outcomes,
    ScriptedLLM,
    bot_settings,
)
from tests.bots.fake_telegram import FakeTelegram


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


async def running(core: BotCore, api: FakeTelegram) -> TelegramBot:
    bot = TelegramBot(core, api.token, base_url=api.root_url, poll_timeout=1)
    await bot.start()
    return bot


async def test_a_whole_conversation_with_owner_friend_and_stranger(
    core: BotCore, api: FakeTelegram
) -> None:
    outcomes = Outcomes(core)
    bot = await running(core, api)
    try:
        assert [c["command"] for c in api.commands] == ["start", "help", "new"]
        await api.user_says(OWNER_TG, "/start")
        await api.user_says(FRIEND_TG, "How is Biscuit doing after his paw?")
        await api.user_says(STRANGER_TG, "hi, who are you?")
        await outcomes.wait_for(3)
        await api.user_says(FRIEND_TG, "/help")
        await api.user_says(OWNER_TG, "/recent")
        await outcomes.wait_for(5)
    finally:
        await bot.stop()

    owner = api.sent_to(OWNER_TG.id)
    assert "I'm the AI twin of Iris Calder, not Iris Calder in person" in owner[0]
    assert "/pause" in owner[0] and "/forget <id>" in owner[0]
    assert "Tomás Ferreira (friend)" in owner[1]

    friend = api.sent_to(FRIEND_TG.id)
    assert len(friend) == 2 and friend[0].strip()
    assert "shares with friends" in friend[1] and "/pause" not in friend[1]
    assert (FRIEND_TG.id, "typing") in api.actions

    assert api.sent_to(STRANGER_TG.id) == [core.texts.refusal()]
    assert (STRANGER_TG.id, "typing") not in api.actions
    assert [o for _, h in outcomes.handled for o in [h.outcome]].count(Outcome.ANSWERED) == 1

    remembered = core.twin.store.count(MemoryFilter(sources=(f"bot:telegram:{FRIEND_TG.id}",)))
    assert remembered == 2


async def test_long_replies_survive_flood_control_and_server_errors(
    scripted_core: BotCore, scripted_llm: ScriptedLLM, api: FakeTelegram
) -> None:
    paragraph = "Biscuit is a rescue greyhound who loves the stairs going up. " * 20
    scripted_llm.reply = "\n\n".join(f"{i}. {paragraph}" for i in range(9))  # ~11,000 chars
    api.fail_next("sendMessage", 429, retry_after=1)
    api.fail_next("sendMessage", 500)
    bot = await running(scripted_core, api)
    try:
        await api.user_says(FRIEND_TG, "Tell me everything about Biscuit")
        sent = await api.wait_for_sent(3)
    finally:
        await bot.stop()

    texts = [m.text for m in sent]
    assert len(texts) == 3
    assert all(len(t) <= 4096 for t in texts)
    assert "\n\n".join(texts) == scripted_llm.reply.strip()
    assert api.calls.count("sendMessage") == 5  # two refused, then three delivered


async def test_polling_recovers_from_server_errors(core: BotCore, api: FakeTelegram) -> None:
    api.fail_next("getUpdates", 500)
    api.fail_next("getUpdates", 502)
    bot = await running(core, api)
    try:
        await api.user_says(FRIEND_TG, "/help")
        await api.wait_for_sent(1)
    finally:
        await bot.stop()
    assert api.calls.count("getUpdates") >= 3
    assert "AI twin of Iris Calder" in api.sent_to(FRIEND_TG.id)[0]


async def test_rate_limited_friend_is_told_once_then_ignored(
    persona_twin: Twin, bot_state: BotState, api: FakeTelegram
) -> None:
    core = BotCore(persona_twin, bot_state, bot_settings(messages_per_minute=2))
    outcomes = Outcomes(core)
    bot = await running(core, api)
    try:
        for _ in range(4):
            await api.user_says(FRIEND_TG, "/help")
        await api.user_says(OWNER_TG, "/help")
        results = await outcomes.wait_for(5)
    finally:
        await bot.stop()
    friend = api.sent_to(FRIEND_TG.id)
    assert len(friend) == 3 and friend[2] == Texts.limited("minute")
    assert sorted(results) == sorted([Outcome.COMMAND] * 3 + [Outcome.LIMITED] * 2)
    assert len(api.sent_to(OWNER_TG.id)) == 1  # the owner has no quota


async def test_restart_and_redelivery_do_not_answer_twice(
    persona_twin: Twin, bot_state: BotState, api: FakeTelegram
) -> None:
    store = persona_twin.store
    source = MemoryFilter(sources=(f"bot:telegram:{FRIEND_TG.id}",))
    core = BotCore(persona_twin, bot_state, bot_settings())
    bot = await running(core, api)
    await api.user_says(FRIEND_TG, "What is Biscuit like?")
    await api.wait_for_sent(1)
    await bot.stop()
    assert api.pending == []  # stopping confirmed what was fetched
    assert store.count(source) == 2

    # A new process (a new core over the same state file) that Telegram sends everything again,
    # as after a crash before the updates were confirmed.
    restarted = BotCore(persona_twin, BotState(bot_state.path), bot_settings())
    outcomes = Outcomes(restarted)
    await api.redeliver()
    bot = await running(restarted, api)
    try:
        assert await outcomes.wait_for(1) == [Outcome.DUPLICATE]
        await api.user_says(FRIEND_TG, "/help")
        await outcomes.wait_for(2)
    finally:
        await bot.stop()
    assert len(api.sent_to(FRIEND_TG.id)) == 2
    assert store.count(source) == 2


async def test_webhook_mode_receives_updates_by_post(core: BotCore, api: FakeTelegram) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    webhook = Webhook(f"http://127.0.0.1:{port}/telegram/hook", port=port)
    bot = TelegramBot(core, api.token, base_url=api.root_url, webhook=webhook)
    await bot.start()
    try:
        assert api.webhook == {"url": webhook.url, "secret_token": webhook.secret}
        await api.user_says(FRIEND_TG, "/help")
        await api.wait_for_sent(1)
        async with (
            ClientSession() as session,
            session.post(webhook.url, json={"update_id": 99}) as forged,
        ):
            assert forged.status == 403  # without Telegram's secret token
    finally:
        await bot.stop()
    assert api.webhook_statuses == [200]
    assert "getUpdates" not in api.calls
    assert "AI twin of Iris Calder" in api.sent_to(FRIEND_TG.id)[0]
