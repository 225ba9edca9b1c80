"""L1 writers backed by a language model: topic names, fact extraction and bios.

Each asks the model for structured output (a pydantic schema with bounded strings and lists);
`LLM.structured` repairs and re-asks, and raises `StructuredOutputError` when no reply
validates, which fails the whole build and leaves the previous profile in place (fact
extraction first asks again for each half of a batch that failed, down to single memories).
The builder only ever hands a writer what the scope being built may see, and extraction
batches hold memories of one visibility, so a model citing the wrong memory cannot widen who
sees a fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from pydantic import BaseModel, Field, create_model

from lm.base import LLM, ChatMessage, StructuredOutputError
from memory.models import Memory
from memory.profile.bio import TemplateBioWriter
from memory.profile.records import (
    BioRequest,
    BioTexts,
    BioTopic,
    FactDraft,
    TopicCluster,
    TopicName,
)

MEMORY_CHARS = 600
MAX_FACTS = 40
FACTS_PER_MEMORY = 3


class TopicNameReply(BaseModel):
    """A topic's name and a one-sentence description."""

    name: str = Field(min_length=2, max_length=60)
    description: str = Field(default="", max_length=300)


class ExtractedFact(BaseModel):
    """One fact about the owner and the numbers of the memories it comes from."""

    statement: str = Field(min_length=3, max_length=200)
    first_person: str = Field(min_length=3, max_length=200)
    # The pattern's counts hold the length too: a grammar follows a pattern, not maxLength.
    attribute: str = Field(
        min_length=2, max_length=40, pattern=r"^[a-z][a-z0-9_]{0,19}(:[a-z0-9_ ]{1,19})?$"
    )
    value: str = Field(min_length=1, max_length=120)
    exclusive: bool = False
    memories: list[int] = Field(min_length=1, max_length=10)


class FactBatchReply(BaseModel):
    facts: list[ExtractedFact] = Field(default_factory=list, max_length=MAX_FACTS)


@cache
def fact_batch_reply(memories: int) -> type[FactBatchReply]:
    """`FactBatchReply` for a batch of `memories`: at most `FACTS_PER_MEMORY` facts each. A
    grammar then ends the list of a model that would otherwise go on listing facts until
    max_tokens cuts its reply off (SmolLM2-135M numbers one per memory, 1, 2, 3, … 40)."""
    limit = min(MAX_FACTS, FACTS_PER_MEMORY * memories)
    return create_model(
        "FactBatchReply",
        __base__=FactBatchReply,
        facts=(list[ExtractedFact], Field(default_factory=list, max_length=limit)),
    )


class BioReply(BaseModel):
    """The four bio texts and the numbers of the facts they used."""

    global_third_person: str = Field(min_length=1, max_length=1500)
    global_first_person: str = Field(min_length=1, max_length=1500)
    status_third_person: str = Field(min_length=1, max_length=1000)
    status_first_person: str = Field(min_length=1, max_length=1000)
    used_facts: list[int] = Field(default_factory=list, max_length=100)


class LLMTopicNamer:
    """Names each topic from its keywords and the memories nearest its centre."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm

    @property
    def name(self) -> str:
        return f"llm:{self.llm.name}"

    def name_topics(self, clusters: Sequence[TopicCluster]) -> list[TopicName]:
        names = []
        for cluster in clusters:
            examples = "\n".join(f"- {_flat(s, 300)}" for s in cluster.samples)
            messages = [
                ChatMessage(
                    "system",
                    "You name the topics in one person's notes and messages. A name is 2 to 6 "
                    'words, specific ("Cuttlefish camouflage research", not "Work"). The '
                    "description is one plain sentence on what the memories are about. Use "
                    "only what the memories say.",
                ),
                ChatMessage(
                    "user",
                    f"{cluster.size} memories share these keywords: "
                    f"{', '.join(cluster.keywords) or '(none)'}.\n"
                    f"The most typical of them:\n{examples}\n\nName this topic.",
                ),
            ]
            reply = self.llm.structured(messages, TopicNameReply)
            names.append(TopicName(reply.name.strip(), reply.description.strip()))
        return names


class LLMFactExtractor:
    """Extracts facts about the owner from a batch of their memories."""

    limits = ""

    def __init__(self, llm: LLM, batch_size: int = 12) -> None:
        self.llm = llm
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return f"llm:{self.llm.name}"

    def extract(self, memories: Sequence[Memory], owner_name: str) -> list[FactDraft]:
        """The facts in a batch of memories. A batch whose reply never validates (most
        often: cut off at max_tokens, holding more facts than fit) is split in two and each
        half asked again; only a single memory without a valid reply fails the build."""
        if not memories:
            return []
        messages = self.messages(memories, owner_name)
        try:
            reply = self.llm.structured(messages, fact_batch_reply(len(memories)))
        except StructuredOutputError:
            if len(memories) == 1:
                raise
            half = len(memories) // 2
            return [
                *self.extract(memories[:half], owner_name),
                *self.extract(memories[half:], owner_name),
            ]
        drafts = []
        for fact in reply.facts:
            # A fact citing a memory that is not in the batch keeps only its real citations.
            support = tuple(
                dict.fromkeys(memories[i - 1].id for i in fact.memories if 1 <= i <= len(memories))
            )
            if support:
                drafts.append(
                    FactDraft(
                        statement=fact.statement.strip(),
                        first_person=fact.first_person.strip(),
                        attribute=fact.attribute.strip(),
                        value=fact.value.strip(),
                        support=support,
                        exclusive=fact.exclusive,
                    )
                )
        return drafts

    def messages(self, memories: Sequence[Memory], owner_name: str) -> list[ChatMessage]:
        """What the model is asked for one batch of memories (numbered from 1)."""
        listing = "\n".join(
            f"[{i}] {_when(m)} {m.author or owner_name} ({m.kind}): {_flat(m.text, MEMORY_CHARS)}"
            for i, m in enumerate(memories, 1)
        )
        return [
            ChatMessage(
                "system",
                f"You extract durable facts about {owner_name} from their own notes and "
                "messages: work, where they live, family and friends, pets, diet, health "
                "they state, likes and dislikes, hobbies, what they are doing these days. "
                "Only facts a memory states or plainly implies; no guesses, no jokes taken "
                "literally, nothing about other people except how they relate to "
                f"{owner_name}. For each fact give: statement (third person, starting with "
                f"{owner_name}), first_person (the same fact as {owner_name} would say it), "
                "attribute (a snake_case key such as job, employer, home_city, diet, pet, "
                "sibling:sister, parent:dad, partner, likes, dislikes, allergy, hobby, "
                "activity), value (the short answer), exclusive (true when a newer value "
                "replaces an older one, as for home_city or employer; false for lists such "
                "as likes) and memories (the numbers of the memories it comes from).",
            ),
            ChatMessage("user", f"Memories:\n{listing}\n\nList the facts (none is fine)."),
        ]


class LLMBioWriter:
    """Writes the four bio texts from a scope's facts and topics."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm

    @property
    def name(self) -> str:
        return f"llm:{self.llm.name}"

    def write(self, request: BioRequest) -> BioTexts:
        if request.is_empty:
            # Nothing to write from: the offline wording says so without inventing anything.
            return TemplateBioWriter().write(request)
        owner = request.owner_name
        facts = "\n".join(f"F{f.key}: {f.statement}" for f in request.facts) or "(none)"
        topics = "\n".join(_topic_line(t) for t in request.topics) or "(none)"
        recent_facts = ", ".join(f"F{f.key}" for f in request.recent_facts) or "(none)"
        recent_topics = "\n".join(_topic_line(t) for t in request.recent_topics) or "(none)"
        period = (
            f"from {request.since:%d %B %Y} to {request.now:%d %B %Y}"
            if request.since and request.now
            else "recently"
        )
        messages = [
            ChatMessage(
                "system",
                f"You write short bios of {owner} from facts and topics taken from their "
                "memory. Use only what is listed: never add a fact. Each text is 2 to 5 "
                "sentences. The global bio says who they are (work, where they live, people, "
                "interests, style); the status bio says what they have been doing and talking "
                "about in the recent period. Third person uses their name; first person is "
                f"{owner} speaking. In used_facts, list the numbers of the facts you used "
                "(F3 is 3).",
            ),
            ChatMessage(
                "user",
                f"Facts:\n{facts}\n\nTopics they talk about (largest first):\n{topics}\n\n"
                f"Recent period: {period}. Facts from that period: {recent_facts}.\n"
                f"Topics active in that period:\n{recent_topics}\n\nWrite the four bios.",
            ),
        ]
        reply = self.llm.structured(messages, BioReply)
        keys = {f.key for f in request.facts}
        return BioTexts(
            global_third=reply.global_third_person.strip(),
            global_first=reply.global_first_person.strip(),
            status_third=reply.status_third_person.strip(),
            status_first=reply.status_first_person.strip(),
            cited=tuple(dict.fromkeys(k for k in reply.used_facts if k in keys)),
        )


def _topic_line(topic: BioTopic) -> str:
    span = f", {topic.first:%b %Y} to {topic.last:%b %Y}" if topic.first and topic.last else ""
    about = f": {topic.description}" if topic.description else ""
    return f"- {topic.label}{about} ({topic.size} memories{span})"


def _when(memory: Memory) -> str:
    return memory.timestamp.date().isoformat() if memory.timestamp else "undated"


def _flat(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
