"""What chat exports teach directly: how the owner actually replies.

Two kinds of samples come from the same threads, both only from chats the audience may see:

- **exchanges** (memory QA): someone asked the owner a question and the owner's reply holds a
  fact ("are you still doing the cello thing?" → "Every Wednesday! The Graça community
  orchestra."). A friend asks it as written, or about the owner by name or pronoun ("is Iris
  still doing the cello thing?"), and hears the reply told about the owner; the owner's model
  gets it as the owner would ask ("am I still doing the cello thing?"), answered in the second
  person;
- **chat pairs** (chat): someone's message → the owner's actual reply, with the turns before it
  as the conversation history, so the twin speaks in the owner's voice.

Held-out pairs (a `test_share` of them) are the test split; they are not trained on.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta

from lm.base import ChatMessage
from memory.models import Kind, Memory
from training.synthesize.drafts import Draft
from training.synthesize.material import Material
from training.synthesize.passages import (
    SpanKind,
    clean_markdown,
    find_spans,
    speak_dates,
    strip_symbols,
)
from training.synthesize.samples import Split
from training.synthesize.voice import QuestionForm, to_first_person
from twin.privacy import AudienceKind
from twin.tasks import TaskKind

# Turns further apart than this are not one conversation.
CONVERSATION_GAP = timedelta(hours=12)
# The owner's messages sent this close together are one reply.
BURST_GAP = timedelta(minutes=10)
HISTORY_TURNS = 4
MAX_REPLY_CHARS = 400
_MEDIA_ONLY = re.compile(r"^\s*(?:\[[^\]]*\]\s*)+$")
_QUESTION_START = re.compile(
    r"^(?:what|when|where|who|why|how|which|are|is|do|did|does|can|could|will|would|have|has)\b",
    re.I,
)
_WH_START = re.compile(r"^(?:what|when|where|who|how|which)\b", re.I)
_FACT_KINDS = frozenset(
    (
        SpanKind.DATE,
        SpanKind.WEEKDAY,
        SpanKind.TIME,
        SpanKind.QUANTITY,
        SpanKind.PLACE,
        SpanKind.NAME,
        SpanKind.PERSON,
        SpanKind.DURATION,
    )
)


class ChatMiner:
    """Exchanges and chat pairs from the chat threads in a `Material`."""

    def __init__(self, material: Material, rng: random.Random, test_share: float = 0.1) -> None:
        self.m = material
        self.seed = rng.random()
        self.test_share = test_share
        self.kind = material.audience.kind
        self.voice = material.voice

    def threads(self) -> list[list[Memory]]:
        """Each chat thread's messages in time order (media-only and bot messages left out)."""
        by_thread: dict[str, list[Memory]] = defaultdict(list)
        for memory in self.m.memories:
            if memory.kind != Kind.CHAT or memory.timestamp is None or not memory.thread:
                continue
            if memory.meta.get("bot") == "true" or _MEDIA_ONLY.match(memory.text):
                continue
            by_thread[memory.thread].append(memory)
        return [
            sorted(msgs, key=lambda m: (m.timestamp, m.id)) for _, msgs in sorted(by_thread.items())
        ]

    def exchanges(self) -> list[Draft]:
        """Questions someone asked the owner, answered by the owner's reply (memory QA)."""
        drafts = []
        for thread in self.threads():
            for prompt, reply in _turns(thread):
                draft = self._exchange(prompt, reply)
                if draft is not None:
                    drafts.append(draft)
        return drafts

    def pairs(self) -> list[Draft]:
        """Someone's message → the owner's actual reply, with the turns before it (chat). Only
        for third parties: the owner does not chat with their own twin."""
        if self.kind == AudienceKind.OWNER:
            return []
        drafts = []
        for thread in self.threads():
            group = len({m.author for m in thread if not m.is_owner}) > 1
            for index, (prompt, reply) in enumerate(_turns(thread)):
                start = thread.index(prompt)
                history = _history(thread[:start], prompt, group)
                held_out = self._held_out(reply[0])
                text = _text(prompt)
                answer = "\n".join(_text(m) for m in reply)[:MAX_REPLY_CHARS].strip()
                if not text or not answer:
                    continue
                drafts.append(
                    Draft(
                        kind=TaskKind.CHAT,
                        text=text,
                        answer=answer,
                        support=tuple(m.id for m in reply),
                        template="chat.held-out" if held_out else "chat.mined",
                        split=Split.TEST if held_out else Split.TRAIN,
                        asker=_first_name(prompt),
                        history=history,
                        fact=f"chat:{reply[0].id}:{index}",
                    )
                )
        return drafts

    def _exchange(self, prompt: Memory, reply: list[Memory]) -> Draft | None:
        question = " ".join(strip_symbols(_text(prompt)).split())
        if not (question.endswith("?") or _QUESTION_START.match(question)):
            return None
        question = question if question.endswith("?") else question.rstrip(" .!") + "?"
        if question.isupper():  # "HOW DID IT GO?"
            question = question.capitalize()
        owner_text = _text(reply[0])
        spans = [s for s in find_spans(owner_text, self.m.lexicon) if s.kind in _FACT_KINDS]
        if not spans or len(owner_text) > MAX_REPLY_CHARS:
            return None
        owner_words = to_first_person(question)
        if self.kind == AudienceKind.OWNER:
            # the owner asks their twin real questions, not "see you tuesday?"
            asked = owner_words if _WH_START.match(question) else None
            if asked is None:
                return None
        else:
            form = self.voice.form(random.Random(f"{self.seed}:{reply[0].id}"))
            use_form = owner_words is not None and form != QuestionForm.YOU
            asked = self.voice.ask(owner_words, form) if use_form else question
        key = spans[0].text
        answer = speak_dates(self.voice.say(" ".join(strip_symbols(owner_text).split())))
        if key not in answer:
            return None
        held_out = self._held_out(reply[0])
        steps = (
            f"{_capitalised(self.voice.source(reply[0]))} answers this.",
            f"It gives the answer: {key}.",
        )
        return Draft(
            kind=TaskKind.MEMORY_QA,
            text=_capitalised(asked),
            answer=answer,
            support=(reply[0].id,),
            key_facts=(key,),
            steps=steps,
            template="exchange.held-out" if held_out else "exchange.mined",
            split=Split.TEST if held_out else Split.TRAIN,
            asker=None if self.kind == AudienceKind.OWNER else _first_name(prompt),
            fact=f"exchange:{reply[0].id}",
        )

    def _held_out(self, reply: Memory) -> bool:
        """Whether a turn is held out: decided by the reply's id, so a turn is held out (or
        not) both as an exchange and as a chat pair."""
        digest = hashlib.sha256(f"{self.seed}:{reply.id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") < self.test_share * 2**32


def _turns(thread: list[Memory]) -> Iterator[tuple[Memory, list[Memory]]]:
    """(someone's message, the owner's reply to it) along a thread: the reply is the owner's
    burst of messages right after it."""
    for i in range(1, len(thread)):
        reply_start, prompt = thread[i], thread[i - 1]
        if not reply_start.is_owner or prompt.is_owner:
            continue
        if reply_start.timestamp - prompt.timestamp > CONVERSATION_GAP:
            continue
        burst = [reply_start]
        for later in thread[i + 1 : i + 3]:
            if not later.is_owner or later.timestamp - burst[-1].timestamp > BURST_GAP:
                break
            burst.append(later)
        yield prompt, burst


def _history(before: list[Memory], prompt: Memory, group: bool) -> tuple[ChatMessage, ...]:
    """The turns before `prompt` in the same conversation, as the bots pass them: the owner's
    as the assistant's, everyone else's as the user's (named in a group)."""
    recent = [
        m for m in before[-HISTORY_TURNS:] if prompt.timestamp - m.timestamp <= CONVERSATION_GAP
    ]
    turns = []
    for memory in recent:
        text = _text(memory)
        if not text:
            continue
        if memory.is_owner:
            turns.append(ChatMessage("assistant", text))
        else:
            turns.append(ChatMessage("user", f"{_first_name(memory)}: {text}" if group else text))
    return tuple(turns)


def _text(memory: Memory) -> str:
    lines = [ln for ln in memory.text.splitlines() if ln.strip() and not _MEDIA_ONLY.match(ln)]
    return clean_markdown("\n".join(lines)).strip()


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _first_name(memory: Memory) -> str | None:
    return memory.author.split()[0] if memory.author else None
