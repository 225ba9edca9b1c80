"""Fixtures for the bots: the persona's people on each platform, a bot core over the persona's
twin, a chat that records what the core sends, and a twin whose model says what a test wants."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bots.core import BotCore, Chat, Handled, Incoming, Outcome
from bots.state import BotState
from lm import ChatLLM, ChatMessage, GenerationOptions
from memory.embed import SentenceTransformerEmbedder
from memory.store import MemoryStore
from serving.answerers import Answerer, TwinModels
from serving.service import Twin
from tests.bots.fake_telegram import TelegramUser
from twin.config import BotSettings, load_settings
from twin.registry import ModelRegistry
from twin.tasks import CoTStrategy, PromptBudget

# The persona's owner ids (examples/persona/twin.toml): Telegram "user5550101".
OWNER_TG = TelegramUser(5550101, "Iris", "iris", last_name="Calder")
FRIEND_TG = TelegramUser(9001, "Tomás", "tomas", last_name="Ferreira")
OTHER_FRIEND_TG = TelegramUser(9002, "Priya", "priya", last_name="Nair")
STRANGER_TG = TelegramUser(6666, "Eve", "eve")

OWNER_DISCORD = 880000000000000101
FRIEND_DISCORD = 880000000000000202
STRANGER_DISCORD = 880000000000000999
ALLOWED_CHANNEL = 990000000000000001
OTHER_CHANNEL = 990000000000000002


def bot_settings(**changes: object) -> BotSettings:
    """The bots' settings for the persona: two Telegram friends, one Discord friend."""
    base = BotSettings(
        friends={
            "telegram": [str(FRIEND_TG.id), f"user{OTHER_FRIEND_TG.id}"],
            "discord": [str(FRIEND_DISCORD)],
        },
        discord_channels=[str(ALLOWED_CHANNEL)],
        messages_per_minute=30,
        messages_per_day=500,
    )
    return base.model_copy(update=changes)


@dataclass
class RecordingChat:
    """A chat that keeps what the core sends and counts how often it showed "typing"."""

    limit: int = 4096
    sent: list[str] = field(default_factory=list)
    typing_shown: int = 0
    fail_sends: int = 0

    def measure(self, text: str) -> int:
        return len(text)

    @asynccontextmanager
    async def typing(self) -> AsyncIterator[None]:
        self.typing_shown += 1
        yield

    async def send(self, text: str) -> None:
        if self.fail_sends:
            self.fail_sends -= 1
            raise ConnectionError("the platform is down")
        assert len(text) <= self.limit
        self.sent.append(text)


class Speaker:
    """Sends numbered messages as one user in one chat through a core."""

    def __init__(
        self, core: BotCore, platform: str, user_id: int, name: str, *, chat_id: int | None = None
    ) -> None:
        self.core = core
        self.platform = platform
        self.user_id = user_id
        self.name = name
        self.chat_id = chat_id or user_id
        self.private = chat_id is None
        self.next_id = 1

    async def says(
        self, text: str, chat: RecordingChat | None = None, message_id: int | None = None
    ):
        chat = chat or RecordingChat()
        if message_id is None:
            message_id, self.next_id = self.next_id, self.next_id + 1
        incoming = Incoming(
            platform=self.platform,
            chat_id=str(self.chat_id),
            message_id=str(message_id),
            user_id=str(self.user_id),
            user_name=self.name,
            text=text,
            sent_at=self.core.twin.clock.now(),
            private=self.private,
            chat_title="" if self.private else "#general",
        )
        return await self.core.handle(incoming, chat), chat


class ScriptedLLM(ChatLLM):
    """A model that answers what `reply(messages)` returns, and keeps every prompt."""

    def __init__(self, reply: Callable[[Sequence[ChatMessage]], str] | str = "Sure.") -> None:
        super().__init__(GenerationOptions())
        self.reply = reply
        self.prompts: list[list[ChatMessage]] = []

    @property
    def name(self) -> str:
        return "scripted"

    def _complete(self, messages: list[ChatMessage], options: GenerationOptions) -> str:
        self.prompts.append(list(messages))
        return self.reply(messages) if callable(self.reply) else self.reply

    def _stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        yield self._complete(messages, options)


@pytest.fixture
def bot_state(tmp_path: Path) -> Iterator[BotState]:
    with BotState.open(tmp_path / "bot-home") as state:
        yield state


@pytest.fixture
def core(persona_twin: Twin, bot_state: BotState) -> BotCore:
    """The bot core over the persona's twin (tiny model), with the test allowlist."""
    return BotCore(persona_twin, bot_state, bot_settings())


@pytest.fixture
def scripted_llm() -> ScriptedLLM:
    return ScriptedLLM()


@pytest.fixture
def scripted_twin(
    persona_home: Path, embedder: SentenceTransformerEmbedder, scripted_llm: ScriptedLLM
) -> Iterator[Twin]:
    """The persona's twin answering with `scripted_llm` (configured as the twin's model)."""
    settings = load_settings(
        persona_home, llm={"twin": {"backend": "openai", "model": "scripted", "base_url": "-"}}
    )
    store = MemoryStore.open(settings.paths.memory_dir, embedder)
    answerer = Answerer("scripted", scripted_llm, CoTStrategy.WEAK, PromptBudget(8, 400), 2048, 256)
    models = TwinModels(ModelRegistry(settings.paths.models_dir), configured=answerer)
    yield Twin(settings, store, models)
    store.close()


@pytest.fixture
def scripted_core(scripted_twin: Twin, bot_state: BotState) -> BotCore:
    return BotCore(scripted_twin, bot_state, bot_settings())


class Outcomes:
    """Records what the core made of each message, so a test can wait for messages that
    produce no reply (duplicates, silenced users)."""

    def __init__(self, core: BotCore) -> None:
        self.handled: list[tuple[Incoming, Handled]] = []
        self._changed = asyncio.Condition()
        original = core.handle

        async def recording(message: Incoming, chat: Chat) -> Handled:
            handled = await original(message, chat)
            async with self._changed:
                self.handled.append((message, handled))
                self._changed.notify_all()
            return handled

        core.handle = recording  # type: ignore[method-assign]

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Outcome]:
        """Wait until `count` messages were handled in all; returns their outcomes."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.handled) >= count), timeout
            )
        return [h.outcome for _, h in self.handled]
