"""The real discord.py client against the REST + gateway stand-in: DMs, mentions in allowed
channels, commands, long replies, rate limits and server errors, a dropped gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import discord
import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bots.core import BotCore, Outcome
from bots.discord_bot import DiscordBot
from memory.models import Visibility
from memory.store import MemoryFilter
from tests.bots.conftest import (
    ALLOWED_CHANNEL,
    FRIEND_DISCORD,
    OTHER_CHANNEL,
    OWNER_DISCORD,
    STRANGER_DISCORD,
    Outcomes,
    ScriptedLLM,
)
from tests.bots.fake_discord import MESSAGE_CONTENT_INTENT, DiscordUser, FakeDiscord

OWNER = DiscordUser(OWNER_DISCORD, "iris.calder", "Iris")
FRIEND = DiscordUser(FRIEND_DISCORD, "priya.nair", "Priya")
STRANGER = DiscordUser(STRANGER_DISCORD, "lurker", "Lurker")


@pytest.fixture
async def api() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(channels={ALLOWED_CHANNEL: "general", OTHER_CHANNEL: "random"}) as fake:
        yield fake


async def running(core: BotCore, api: FakeDiscord) -> DiscordBot:
    bot = DiscordBot(core, api.token, api_base=api.api_base, gateway_url=api.gateway_url)
    await bot.start()
    return bot


async def test_dms_mentions_and_commands(core: BotCore, api: FakeDiscord) -> None:
    real_endpoints = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    outcomes = Outcomes(core)
    bot = await running(core, api)
    try:
        assert api.identifies[0]["intents"] & MESSAGE_CONTENT_INTENT
        await api.user_says(OWNER, "/help")
        await api.user_says(FRIEND, "How is Biscuit doing?")
        await api.user_says(STRANGER, "hello?")
        await api.user_says(
            FRIEND, "What climbing gym does Iris go to?", channel=ALLOWED_CHANNEL, mention=True
        )
        await outcomes.wait_for(4)
        # Not for the twin: no mention, or a channel it was not allowed in.
        await api.user_says(FRIEND, "just chatting", channel=ALLOWED_CHANNEL)
        await api.user_says(FRIEND, "hey twin", channel=OTHER_CHANNEL, mention=True)
        await api.user_says(OWNER, "/recent", channel=ALLOWED_CHANNEL, mention=True)
        await outcomes.wait_for(5)
    finally:
        await bot.stop()
    assert real_endpoints == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)

    assert "/pause" in api.sent_to(OWNER.dm_channel)[0]
    assert len(api.sent_to(FRIEND.dm_channel)) == 1
    assert api.sent_to(STRANGER.dm_channel) == [core.texts.refusal()]
    channel = api.sent_to(ALLOWED_CHANNEL)
    assert len(channel) == 2 and channel[1] == "Owner commands work in a private chat with me only."
    assert api.sent_to(OTHER_CHANNEL) == []
    assert FRIEND.dm_channel in api.typing and ALLOWED_CHANNEL in api.typing
    # Replies never ping anyone.
    assert all(m.allowed_mentions == {"parse": []} for m in api.sent)

    # The channel's conversation belongs to the channel: what is said there is seen there.
    in_channel = list(
        core.twin.store.iter_memories(MemoryFilter(sources=(f"bot:discord:{ALLOWED_CHANNEL}",)))
    )
    assert [m.author for m in in_channel] == ["Priya", "Iris Calder's twin"]
    assert in_channel[0].text == "What climbing gym does Iris go to?"
    assert all(m.visibility == Visibility.PRIVATE for m in in_channel)
    assert {m.shared_with for m in in_channel} == {f"discord:chat:{ALLOWED_CHANNEL}"}


async def test_long_replies_rate_limits_server_errors_and_a_dropped_gateway(
    scripted_core: BotCore, scripted_llm: ScriptedLLM, api: FakeDiscord
) -> None:
    scripted_llm.reply = "Biscuit loves the stairs going up. " * 150  # ~5,200 characters
    outcomes = Outcomes(scripted_core)
    bot = await running(scripted_core, api)
    try:
        api.fail_next("/messages", 429, retry_after=0.2)
        api.fail_next("/messages", 500)
        await api.user_says(FRIEND, "Tell me about Biscuit")
        sent = await api.wait_for_sent(3)
        await api.drop_connection()
        await api.request_reconnect()
        await api.user_says(FRIEND, "/help")
        await outcomes.wait_for(2)
    finally:
        await bot.stop()
    parts = [m.content for m in sent]
    assert len(parts) == 3 and all(len(p) <= 2000 for p in parts)
    assert " ".join(parts) == scripted_llm.reply.strip()
    assert api.requests.count(f"POST /channels/{FRIEND.dm_channel}/messages") == 6
    assert api.resumes == 2 and len(api.identifies) == 1  # resumed, not a new session
    assert [h.outcome for _, h in outcomes.handled] == [Outcome.ANSWERED, Outcome.COMMAND]


async def test_a_bad_token_or_a_missing_intent_stops_the_start_with_the_reason(
    core: BotCore, api: FakeDiscord
) -> None:
    wrong = DiscordBot(core, "not-the-token", api_base=api.api_base, gateway_url=api.gateway_url)
    with pytest.raises(discord.LoginFailure):
        await wrong.start()
    api.message_content_enabled = False
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await running(core, api)
    assert Route.BASE == "https://discord.com/api/v10"
