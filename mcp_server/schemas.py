"""What the MCP tools return: pydantic models, so each tool publishes an `outputSchema` and answers
with structured content (and the same JSON as text for clients that only read text).

Field descriptions are part of the schema the calling model reads: they say what a value means
and how far to trust it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from memory.models import Memory
from memory.retrieve import SearchHit
from serving.service import Evidence, TwinReply

AudienceName = Literal["owner", "friend", "public"]
VerdictName = Literal["fits", "partly", "does not fit"]


class MemoryRef(BaseModel):
    """A memory a reply relied on."""

    id: str = Field(description="The memory's id (use it with `forget`, or to cite it).")
    source: str = Field(description="Where it comes from: a notes folder, a chat, a channel.")
    when: datetime | None = Field(description="When it was written or said (UTC), if known.")
    who: str = Field(description="Who wrote or said it ('note' for the owner's notes).")
    snippet: str = Field(description="The start of its text.")

    @classmethod
    def of(cls, evidence: Evidence) -> MemoryRef:
        return cls(
            id=evidence.memory_id,
            source=evidence.source,
            when=evidence.when,
            who=evidence.who,
            snippet=evidence.snippet,
        )


def _refs(reply: TwinReply) -> list[MemoryRef]:
    return [MemoryRef.of(e) for e in reply.evidence]


class TwinAnswer(BaseModel):
    """The twin's answer to a question about its owner."""

    answer: str = Field(description="The answer, in the owner's perspective.")
    found: bool = Field(
        description="False when memory holds nothing on the question: the answer then says so "
        "instead of guessing. Do not fill the gap with assumptions about the owner."
    )
    search_similarity: float = Field(
        ge=0.0,
        le=1.0,
        description="How close the best memory behind the answer is to the question (cosine "
        "similarity, 0-1). Below about 0.4 the memories are only loosely related.",
    )
    memories: list[MemoryRef] = Field(description="The memories the answer relied on.")
    withheld: bool = Field(
        description="True when the reply was held back because it would reveal something this "
        "audience may not see."
    )
    audience: AudienceName = Field(description="Whose view of memory the answer was drawn from.")
    model: str = Field(
        description="What answered: a model version ('v0003/owner'), or 'retrieval' when no "
        "model was used."
    )
    model_problem: str = Field(
        default="",
        description="Why no trained model answered (none trained yet, a damaged model file, a "
        "failed call) and what fixes it; empty when one did.",
    )

    @classmethod
    def of(cls, reply: TwinReply, audience: AudienceName) -> TwinAnswer:
        return cls(
            answer=reply.text,
            found=reply.found,
            search_similarity=reply.search_similarity,
            memories=_refs(reply),
            withheld=reply.withheld,
            audience=audience,
            model=reply.model,
            model_problem=reply.model_problem,
        )


class EnhancedRequest(BaseModel):
    """A request rewritten with the owner's context."""

    request: str = Field(description="The request, rewritten to carry the owner's context.")
    added: list[str] = Field(description="The facts about the owner that were added.")
    memories: list[MemoryRef] = Field(description="The memories the added context comes from.")
    model: str = Field(description="What wrote it: a model version, or 'retrieval'.")

    @classmethod
    def of(cls, reply: TwinReply) -> EnhancedRequest:
        return cls(
            request=reply.text,
            added=list(reply.added),
            memories=_refs(reply),
            model=reply.model,
        )


class Critique(BaseModel):
    """Another agent's reply, judged from the owner's point of view."""

    verdict: VerdictName | None = Field(
        description="Whether the reply fits the owner's situation: 'fits', 'partly' or 'does "
        "not fit'; null when the twin gave no clear verdict."
    )
    feedback: str = Field(description="What to change so the reply fits the owner.")
    checked: list[str] = Field(description="The owner's facts the reply was checked against.")
    memories: list[MemoryRef] = Field(description="The memories those facts come from.")
    model: str = Field(description="What judged it: a model version, or 'retrieval'.")

    @classmethod
    def of(cls, reply: TwinReply) -> Critique:
        return cls(
            verdict=reply.verdict.value if reply.verdict else None,
            feedback=reply.text,
            checked=list(reply.checked),
            memories=_refs(reply),
            model=reply.model,
        )


class FoundMemory(BaseModel):
    """One memory that matches a search."""

    id: str = Field(description="The memory's id.")
    text: str = Field(description="Its full text.")
    source: str = Field(description="Where it comes from.")
    when: datetime | None = Field(description="When it was written or said (UTC), if known.")
    who: str = Field(description="Who wrote or said it ('note' for the owner's notes).")
    kind: str = Field(description="note, chat or document.")
    visibility: str = Field(description="Who may see it: private, friends or public.")
    score: float = Field(description="Fused retrieval score (only meaningful as a ranking).")
    similarity: float | None = Field(description="Cosine similarity to the query, 0-1.")

    @classmethod
    def of(cls, hit: SearchHit) -> FoundMemory:
        m: Memory = hit.memory
        return cls(
            id=m.id,
            text=m.text,
            source=m.source_name,
            when=m.timestamp,
            who=m.author or "note",
            kind=m.kind.value,
            visibility=m.visibility.value,
            score=round(hit.score, 6),
            similarity=None if hit.similarity is None else round(hit.similarity, 4),
        )


class SearchResults(BaseModel):
    """Memories matching a query, best first."""

    query: str
    count: int = Field(description="How many memories are listed.")
    memories: list[FoundMemory]


class Remembered(BaseModel):
    """The outcome of `remember`."""

    stored: bool = Field(
        description="False when the text was not stored: the owner forgot the same text "
        "before, and forgotten things are not remembered again."
    )
    id: str | None = Field(description="The new memory's id (null when not stored).")
    visibility: str = Field(description="Who may see the new memory.")
    note: str = Field(description="What happens next, in a sentence.")


class Forgotten(BaseModel):
    """The outcome of `forget`."""

    id: str
    forgotten: bool
    source: str = Field(description="Where the forgotten memory came from.")
    snippet: str = Field(description="The start of what was forgotten.")
