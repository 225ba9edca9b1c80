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
from memory.models import Kind, Memory, MemoryDraft, ParsedSource, SourceRef, Visibility
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
    """Store both sides of `exchange` in one transaction; returns the memories that were new."""
    conversation = exchange.conversation
    source = SourceRef(
        key=conversation.source_key,
        kind="bot",
        name=f"{conversation.platform.capitalize()} bot: {conversation.title}",
    )
    shared_with = None if exchange.audience.is_owner else exchange.audience.principal
    meta = {"platform": conversation.platform, "audience": str(exchange.audience.kind)}
    reply_meta = {**meta, "model": exchange.model}
    if exchange.withheld:
        reply_meta["withheld"] = "true"
    question = MemoryDraft(
        text=exchange.question,
        kind=Kind.CHAT,
        source_id=exchange.message_id,
        author=exchange.asker.name,
        author_id=exchange.asker.principal,
        timestamp=exchange.asked_at,
        thread=conversation.thread,
        visibility=Visibility.PRIVATE,
        shared_with=shared_with,
        is_owner=exchange.asker.is_owner,
        meta=meta,
    )
    answer = MemoryDraft(
        text=exchange.answer,
        kind=Kind.CHAT,
        source_id=f"{exchange.message_id}:reply",
        author=twin_name(owner),
        author_id=f"{conversation.platform}:twin",
        timestamp=exchange.answered_at,
        thread=conversation.thread,
        reply_to=exchange.message_id,
        visibility=Visibility.PRIVATE,
        shared_with=shared_with,
        is_owner=False,
        meta=reply_meta,
    )
    report = store.ingest(
        ParsedSource(source=source, drafts=[question, answer]),
        visibility=Visibility.PRIVATE,
        fmt="bot",
    )
    return store.get_many(report.added_ids)


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
