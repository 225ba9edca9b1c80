"""The platform-neutral bot: one message in, the right reply out, the exchange remembered.

An adapter (Telegram, Discord) turns a platform message into an `Incoming` and gives the core a
`Chat` to answer in. The core decides who is asking and what they may see, enforces the pause
switch and per-user quotas, runs commands, lets the twin answer (with the conversation's recent
turns as context) while the chat shows "typing", sends the reply in pieces the platform accepts,
and stores the exchange in L0. A failure anywhere becomes a short apology and a log line.

Privacy: answers come from `Twin.answer`, which retrieves only what the audience may see, uses
the model trained for it and passes the reply through the output guard. On top of that, a
third party's message that names something the owner keeps from them (checked with the same
guard) is kept out of their memory and out of the context of later answers: the guard treats what
an asker's memory holds as known to them, so quoting a secret to the twin must not make it so.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from bots.people import Asker, Directory
from bots.record import Exchange, forget_conversation, record_exchange, twin_name
from bots.splitting import split_message
from bots.state import BotState, Conversation, Turn
from core.text import one_line
from lm import ChatMessage
from memory.models import Visibility
from serving.service import Twin, TwinReply
from twin.config import BotSettings
from twin.privacy import Audience, AudienceKind

log = logging.getLogger(__name__)

# Longer questions are refused politely instead of being cut (and failing in the model).
MAX_QUESTION_CHARS = 2000
RECENT_SHOWN = 10
TURNS_SHOWN = 20


@dataclass(frozen=True)
class Incoming:
    """A text message to the bot, as any platform delivers it."""

    platform: str
    chat_id: str
    message_id: str
    user_id: str
    user_name: str
    text: str
    sent_at: datetime
    # A one-to-one chat with the bot (a Telegram private chat, a Discord DM); otherwise a shared
    # space such as a Discord channel, whose readers are more than the asker.
    private: bool = True
    chat_title: str = ""

    @property
    def key(self) -> str:
        """Identifies the message across re-deliveries."""
        return f"{self.chat_id}:{self.message_id}"


class Chat(Protocol):
    """Where the reply goes: the adapter's handle on one chat."""

    @property
    def limit(self) -> int:
        """The longest message this platform accepts, as `measure` counts."""
        ...

    def measure(self, text: str) -> int:
        """The length of `text` as the platform counts it."""
        ...

    def typing(self) -> AbstractAsyncContextManager[object]:
        """Show "typing…" for as long as the block runs."""
        ...

    async def send(self, text: str) -> None:
        """Send one message (at most `limit` characters)."""
        ...


class Outcome(StrEnum):
    ANSWERED = "answered"
    COMMAND = "command"
    REFUSED = "refused"
    LIMITED = "limited"
    PAUSED = "paused"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    FAILED = "failed"


@dataclass(frozen=True)
class Handled:
    """What became of one incoming message."""

    outcome: Outcome
    sent: tuple[str, ...] = ()
    reply: TwinReply | None = None
    conversation: int | None = None


@dataclass(frozen=True)
class Command:
    name: str
    argument: str


def parse_command(text: str) -> Command | None:
    """ "/recent 3", "/help@twin_bot" or "!help": a command; anything else is not."""
    stripped = text.strip()
    if len(stripped) < 2 or stripped[0] not in "/!":
        return None
    head, _, rest = stripped[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    if not name.isalnum():
        return None
    return Command(name, rest.strip())


class Texts:
    """What the bot says by itself, in the owner's name."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def about(self, asker: Asker, audience: Audience | None) -> str:
        who = (
            f"I'm the AI twin of {self.owner}, not {self.owner} in person. I answer in "
            f"{self.owner}'s voice"
        )
        if audience is None:
            return f"{who}, but only to people {self.owner} has added as friends."
        if audience.is_owner:
            scope = "from all of your memory. Our conversations stay private to you."
        elif audience.kind is AudienceKind.PUBLIC:
            scope = f"from what {self.owner} has made public."
        else:
            scope = f"from what {self.owner} shares with friends."
        lines = [
            f"{who} {scope}",
            "I can be wrong, and I don't know everything they know.",
        ]
        if not audience.is_owner:
            lines.append(
                f"What you write here is remembered by the twin, and {self.owner} can read it."
            )
        lines += ["", "/new – start a fresh conversation", "/help – this message"]
        if asker.is_owner:
            lines += [
                "",
                "Owner commands (in a private chat):",
                "/recent – recent conversations; /recent <id> – one of them",
                "/pause, /resume – stop or restart answering others",
                "/forget <id> – forget a conversation everywhere",
            ]
        return "\n".join(lines)

    def refusal(self) -> str:
        return (
            f"Hi! I'm the AI twin of {self.owner}, not {self.owner} in person. I only talk with "
            f"people {self.owner} has added as friends, sorry. If you know {self.owner}, ask them "
            "to add you."
        )

    def paused(self) -> str:
        return f"{self.owner}'s twin is paused right now. Please try again later."

    @staticmethod
    def limited(window: str) -> str:
        if window == "day":
            return "That's all I can answer today. Let's talk again tomorrow."
        return "You're writing faster than I can answer. Please wait a minute and try again."

    APOLOGY = "Sorry, something went wrong on my side. Please try again in a moment."
    TOO_LONG = (
        f"That message is too long for me (over {MAX_QUESTION_CHARS} characters). "
        "Could you ask in fewer words?"
    )
    UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
    OWNER_ONLY_HERE = "Owner commands work in a private chat with me only."
    NEW_CONVERSATION = "Fresh start: I've put our earlier messages out of mind."


class BotCore:
    """The bot behind every platform: one instance serves them all."""

    def __init__(self, twin: Twin, state: BotState, settings: BotSettings | None = None) -> None:
        self.twin = twin
        self.state = state
        self.settings = settings or twin.settings.bots
        self.directory = Directory(twin.settings.owner, self.settings)
        self.texts = Texts(twin.owner)
        self._in_flight: set[tuple[str, str]] = set()
        self._chat_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def handle(self, message: Incoming, chat: Chat) -> Handled:
        """Answer one message. Never raises: a failure is logged and apologised for."""
        if not message.text.strip():
            return Handled(Outcome.IGNORED)
        seen = (message.platform, message.key)
        if seen in self._in_flight or self.state.was_processed(*seen):
            log.info("%s message %s was already handled; skipped", *seen)
            return Handled(Outcome.DUPLICATE)
        self._in_flight.add(seen)
        try:
            # One message at a time per chat, in arrival order: the context of an answer is
            # the turns before it.
            async with self._chat_lock(message.platform, message.chat_id):
                return await self._dispatch(message, chat)
        except Exception:
            log.exception("failed to handle %s message %s", *seen)
            try:
                await chat.send(Texts.APOLOGY)
            except Exception:
                log.exception("could not apologise in %s chat %s", *seen)
            return Handled(Outcome.FAILED)
        finally:
            self._in_flight.discard(seen)
            self._mark_processed(*seen)

    def _mark_processed(self, platform: str, key: str) -> None:
        try:
            self.state.mark_processed(platform, key)
        except Exception:
            log.exception("could not record %s message %s as handled", platform, key)

    def _chat_lock(self, platform: str, chat_id: str) -> asyncio.Lock:
        key = (platform, chat_id)
        lock = self._chat_locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._chat_locks[key] = lock
        return lock

    async def _dispatch(self, message: Incoming, chat: Chat) -> Handled:
        asker = self.directory.asker(message.platform, message.user_id, message.user_name)
        audience = self.directory.audience(asker, private=message.private, chat_id=message.chat_id)
        if not asker.is_owner:
            quota = self.state.take_quota(
                asker.principal, self.settings.messages_per_minute, self.settings.messages_per_day
            )
            if not quota.allowed:
                log.info("%s is over their %s limit", asker.principal, quota.window)
                texts = (self.texts.limited(quota.window),) if quota.notify else ()
                return await self._say(chat, texts, Outcome.LIMITED)
        command = parse_command(message.text)
        if command is not None:
            return await self._command(command, message, asker, audience, chat)
        if not asker.is_owner and self.state.paused:
            return await self._say(chat, (self.texts.paused(),), Outcome.PAUSED)
        if audience is None:
            # The owner finds a new friend's id here, to add it under [bots.friends].
            log.info("refused a stranger: %s (%s)", asker.principal, asker.name)
            return await self._say(chat, (self.texts.refusal(),), Outcome.REFUSED)
        if len(message.text) > MAX_QUESTION_CHARS:
            return await self._say(chat, (Texts.TOO_LONG,), Outcome.REFUSED)
        return await self._answer(message, asker, audience, chat)

    async def _answer(
        self, message: Incoming, asker: Asker, audience: Audience, chat: Chat
    ) -> Handled:
        title = message.chat_title if not message.private else asker.name
        conversation = self.state.conversation_for(
            message.platform,
            message.chat_id,
            title or asker.name,
            audience.kind,
            audience.principal,
        )
        history = _history(
            self.state.turns(conversation.id, self.settings.history_turns, context_only=True),
            shared_space=not message.private,
        )
        # Whether the message names something hidden from the asker is checked while the twin
        # answers; it decides what is remembered, not what is said.
        naming = (
            None
            if audience.is_owner
            else asyncio.create_task(
                asyncio.to_thread(
                    self.twin.guard.check, message.text, _WithAllConversations.of(audience)
                )
            )
        )
        try:
            async with chat.typing():
                reply = await self.twin.aanswer(
                    message.text, audience, asker=asker.name, history=history
                )
        except BaseException:
            if naming is not None:
                naming.cancel()
            raise
        names_hidden = False
        if naming is not None:
            verdict = await naming
            names_hidden = not verdict.allowed
            if names_hidden:
                log.warning(
                    "%s named something hidden from them (%s); kept out of their memory",
                    asker.principal,
                    verdict.reason,
                )
        sent = await self._send(chat, reply.text)
        answered_at = self.twin.clock.now()
        self.state.add_turn(
            conversation.id, "user", asker.name, message.text, in_context=not names_hidden
        )
        self.state.add_turn(
            conversation.id,
            "assistant",
            twin_name(self.twin.owner),
            reply.text,
            in_context=not names_hidden,
        )
        if not names_hidden:
            exchange = Exchange(
                asker=asker,
                audience=audience,
                conversation=conversation,
                message_id=message.message_id,
                question=message.text,
                asked_at=message.sent_at,
                answer=reply.text,
                answered_at=answered_at,
                model=reply.model,
                withheld=reply.withheld,
            )
            await asyncio.to_thread(record_exchange, self.twin.store, exchange, self.twin.owner)
        return Handled(Outcome.ANSWERED, sent, reply, conversation.id)

    async def _send(self, chat: Chat, text: str) -> tuple[str, ...]:
        parts = tuple(split_message(text, chat.limit, chat.measure))
        for part in parts:
            await chat.send(part)
        return parts

    async def _say(self, chat: Chat, texts: Sequence[str], outcome: Outcome) -> Handled:
        sent: list[str] = []
        for text in texts:
            sent.extend(await self._send(chat, text))
        return Handled(outcome, tuple(sent))

    # -- commands ------------------------------------------------------------------------------

    async def _command(
        self,
        command: Command,
        message: Incoming,
        asker: Asker,
        audience: Audience | None,
        chat: Chat,
    ) -> Handled:
        if command.name in ("start", "help"):
            return await self._say(chat, (self.texts.about(asker, audience),), Outcome.COMMAND)
        if command.name == "new":
            self.state.close_conversation(message.platform, message.chat_id)
            return await self._say(chat, (Texts.NEW_CONVERSATION,), Outcome.COMMAND)
        owner_commands = {
            "recent": self._recent,
            "pause": self._pause,
            "resume": self._resume,
            "forget": self._forget,
        }
        run = owner_commands.get(command.name)
        if run is None or not asker.is_owner:
            return await self._say(chat, (Texts.UNKNOWN_COMMAND,), Outcome.COMMAND)
        if not message.private:
            return await self._say(chat, (Texts.OWNER_ONLY_HERE,), Outcome.COMMAND)
        return await self._say(chat, (await run(command.argument),), Outcome.COMMAND)

    async def _recent(self, argument: str) -> str:
        if argument:
            conversation = self._conversation_named(argument)
            if conversation is None:
                return f"There is no conversation {argument}. /recent lists them."
            return _transcript(conversation, self.state.turns(conversation.id, TURNS_SHOWN))
        conversations = self.state.recent(RECENT_SHOWN)
        if not conversations:
            return "No conversations yet."
        lines = ["Recent conversations (/recent <id> shows one, /forget <id> forgets it):"]
        for conversation in conversations:
            last = self.state.turns(conversation.id, 1)
            lines.append(_heading(conversation))
            if last:
                lines.append(f"   last: {one_line(last[0].text, 80)}")
        if self.state.paused:
            lines.append("\nThe bot is paused: /resume to answer others again.")
        return "\n".join(lines)

    async def _pause(self, argument: str) -> str:
        self.state.set_paused(True)
        return "Paused: I'll tell everyone but you that I'm paused. /resume to undo."

    async def _resume(self, argument: str) -> str:
        self.state.set_paused(False)
        return "Resumed: I'm answering your friends again."

    async def _forget(self, argument: str) -> str:
        if not argument:
            return "Which one? /forget <id>, with an id from /recent."
        conversation = self._conversation_named(argument)
        if conversation is None:
            return f"There is no conversation {argument}. /recent lists them."
        forgotten = await asyncio.to_thread(forget_conversation, self.twin.store, conversation)
        self.state.delete_conversation(conversation.id)
        return (
            f"Forgot conversation #{conversation.id} with {conversation.title}: "
            f"{forgotten} memories removed, and it is out of the twin's context."
        )

    def _conversation_named(self, argument: str) -> Conversation | None:
        number = argument.strip().lstrip("#")
        return self.state.conversation(int(number)) if number.isdigit() else None


@dataclass(frozen=True)
class _WithAllConversations(Audience):
    """An asker's audience that also sees every conversation with the twin. Checked against it,
    a message counts as naming something hidden only when the owner keeps that from the asker
    (a private note, a chat they may not see); words that merely overlap what someone else said
    to the twin do not count. The principal is marked so the guard caches this view apart from
    the asker's own."""

    @classmethod
    def of(cls, audience: Audience) -> _WithAllConversations:
        return cls(audience.kind, f"{audience.principal}#all-conversations")

    def may_see(self, visibility: Visibility, shared_with: str | None = None) -> bool:
        return shared_with is not None or super().may_see(visibility)


def _history(turns: list[Turn], *, shared_space: bool) -> list[ChatMessage]:
    """Recent turns as the model's conversation history. In a shared space several people
    talk, so each of their messages says who wrote it."""
    return [
        ChatMessage(
            t.role, f"{t.speaker}: {t.text}" if shared_space and t.role == "user" else t.text
        )
        for t in turns
    ]


def _heading(conversation: Conversation) -> str:
    when = conversation.last_at.strftime("%d %b %H:%M")
    who = "you" if conversation.audience is AudienceKind.OWNER else conversation.audience.value
    return (
        f"#{conversation.id} {conversation.platform} · {conversation.title} ({who}) · "
        f"{when} UTC · {conversation.messages} messages"
    )


def _transcript(conversation: Conversation, turns: list[Turn]) -> str:
    lines = [_heading(conversation)]
    for turn in turns:
        mark = "" if turn.in_context else " [names something private; kept out of memory]"
        lines.append(f"{turn.speaker}: {turn.text}{mark}")
    return "\n".join(lines)
