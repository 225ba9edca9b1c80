"""Every exchange with the twin becomes L0 memory for the next retraining.

Both sides of an exchange are stored as chat memories in the chat's source (`bot:<platform>:<chat
id>`) and the conversation's thread. They are private, and shared with the audience's principal
when that is not the owner: a friend's conversation is visible to that friend and the owner,
never to other friends. The twin's words are marked as not the owner's own (`is_owner=False`),
so training never learns the twin's replies as the owner's voice. Memory ids come from the
platform's message ids, so a re-delivered message adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bots.people import Asker
from bots.state import Conversation
from memory.models import Kind, Memory, SourceRef, Visibility
from memory.store import MemoryFilter, MemoryStore
from twin.privacy import Audience


@dataclass(frozen=True)
class Exchange:
    """A message to the twin and the reply that was sent."""

    asker: Asker
    audience: Audience
    conversation: Conversation
    message_id: str
    question: str
    asked_at: datetime
    answer: str
    answered_at: datetime
    model: str = ""
    withheld: bool = False


def twin_name(owner: str) -> str:
    """How the twin is named as the author of its replies."""
    return f"{owner}'s twin"


def record_exchange(store: MemoryStore, exchange: Exchange, owner: str) -> list[Memory]:
    """Store both sides of `exchange`; returns the memories that were new."""
    conversation = exchange.conversation
    platform = conversation.platform.capitalize()
    source = SourceRef(
        key=conversation.source_key,
        kind="bot",
        name=f"{platform} bot: {conversation.title}",
    )
    shared_with = None if exchange.audience.is_owner else exchange.audience.principal
    common = {
        "source": source,
        "kind": Kind.CHAT,
        "visibility": Visibility.PRIVATE,
        "shared_with": shared_with,
        "thread": conversation.thread,
    }
    meta = {"platform": conversation.platform, "audience": str(exchange.audience.kind)}
    question = store.add(
        exchange.question,
        author=exchange.asker.name,
        author_id=exchange.asker.principal,
        is_owner=exchange.asker.is_owner,
        timestamp=exchange.asked_at,
        source_id=exchange.message_id,
        meta=meta,
        **common,
    )
    reply_meta = {**meta, "model": exchange.model}
    if exchange.withheld:
        reply_meta["withheld"] = "true"
    answer = store.add(
        exchange.answer,
        author=twin_name(owner),
        author_id=f"{conversation.platform}:twin",
        is_owner=False,
        timestamp=exchange.answered_at,
        source_id=f"{exchange.message_id}:reply",
        reply_to=exchange.message_id,
        meta=reply_meta,
        **common,
    )
    return [m for m in (question, answer) if m is not None]


def forget_conversation(store: MemoryStore, conversation: Conversation) -> int:
    """Forget every memory of a conversation; returns how many there were."""
    ids = [
        m.id
        for m in store.iter_memories(
            MemoryFilter(thread=conversation.thread, sources=(conversation.source_key,))
        )
    ]
    if not ids:
        return 0
    return len(store.forget(ids, reason=f"conversation #{conversation.id} forgotten by the owner"))
