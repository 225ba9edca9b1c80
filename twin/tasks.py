"""The twin's tasks, defined once for training and serving alike.

The three tasks of the paper (memory QA, context enhance, context critic) plus identity and chat
replies. A `TaskRequest` is what the twin is asked; `render_messages` turns it into the exact chat
messages a model sees, both when training data is written and when the twin answers; the model's
reply is read back by `parse_reply`. Changing a format here changes both sides together.

Chain-of-thought strategies shape the reply: `weak` is the answer alone, `multi-step` is free
reasoning then "Answer:", `strong` is a short bulleted reasoning block in <think> tags then the
answer. Serving always strips the reasoning from what the asker sees and keeps it alongside.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from core.calendar import spoken_date
from lm.base import ChatMessage
from memory.models import Memory
from twin.privacy import AudienceKind

if TYPE_CHECKING:
    from memory.profile import ProfileView


class TaskKind(StrEnum):
    MEMORY_QA = "memory_qa"
    CONTEXT_ENHANCE = "context_enhance"
    CONTEXT_CRITIC = "context_critic"
    IDENTITY = "identity"
    CHAT = "chat"


class CoTStrategy(StrEnum):
    WEAK = "weak"
    MULTI_STEP = "multi-step"
    STRONG = "strong"


class Verdict(StrEnum):
    FITS = "fits"
    PARTLY = "partly"
    DOES_NOT_FIT = "does not fit"


# What the twin says when memory holds nothing on a question, and when it withholds.
WITHHELD = "That's not something I can share."
_NOTHING_FOUND_OWNER = "I don't have anything on that in your memory."
_NOTHING_FOUND_OTHERS = "I don't know — that's not something I have in memory."


def nothing_found(audience: AudienceKind) -> str:
    """The reply when memory holds nothing on the question (found: false)."""
    return _NOTHING_FOUND_OWNER if audience == AudienceKind.OWNER else _NOTHING_FOUND_OTHERS


@dataclass(frozen=True)
class ContextMemory:
    """A memory as a prompt shows it: short, dated (as people write dates), attributed."""

    id: str
    when: str
    who: str
    text: str

    def line(self, max_chars: int, focus: str = "") -> str:
        """The memory on one line, cut to `max_chars` around what `focus` asks about."""
        return f"{self.when} {self.who}: {excerpt(self.text, focus, max_chars)}".strip()

    @classmethod
    def of(cls, memory: Memory) -> ContextMemory:
        when = spoken_date(memory.timestamp) if memory.timestamp else ""
        return cls(id=memory.id, when=when, who=memory.author or "note", text=memory.text)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORDS = re.compile(r"\w+")


def excerpt(text: str, focus: str, max_chars: int) -> str:
    """`text` on one line, and if it is longer than `max_chars`, the run of sentences that
    shares most words with `focus` (a long note's answer is often far from its start).
    A short first line (a note's "Title › Heading" breadcrumb) is kept in front."""
    flat = " ".join(text.split())
    if len(flat) <= max_chars:
        return flat
    sentences = [" ".join(s.split()) for s in _SENTENCE_END.split(text) if s.strip()]
    head = sentences[0] if len(sentences) > 1 and len(sentences[0]) <= max_chars // 3 else ""
    body = sentences[1:] if head else sentences
    wanted = {w for w in _WORDS.findall(focus.casefold()) if len(w) > 2}
    scores = [len(wanted & set(_WORDS.findall(s.casefold()))) for s in body]
    start = max(range(len(body)), key=lambda i: (scores[i], -i)) if body else 0
    room = max_chars - len(head) - 3
    picked: list[str] = []
    for sentence in body[start:]:
        if len(" ".join([*picked, sentence])) > room:
            break
        picked.append(sentence)
    text_out = " ".join(picked) if picked else body[start][: room - 1].rstrip() + "…"
    lead = "… " if start > 0 else ""
    return f"{head} {lead}{text_out}".strip() if head else f"{lead}{text_out}"


@dataclass(frozen=True)
class PromptBudget:
    """How much context a prompt carries. A tiny model gets little; a large one can take more."""

    memories: int = 4
    chars_per_memory: int = 200
    bio: bool = True


@dataclass(frozen=True)
class TaskRequest:
    """What the twin is asked, with the context it will answer from."""

    kind: TaskKind
    owner: str
    audience: AudienceKind
    text: str
    asker: str | None = None
    # context enhance: who the request is for; context critic: the other agent's reply
    target: str | None = None
    reply: str | None = None
    context: tuple[ContextMemory, ...] = ()
    bio: str = ""
    history: tuple[ChatMessage, ...] = ()


@dataclass(frozen=True)
class TaskReply:
    """A model's reply, read back: the reasoning (if any) and what the asker sees."""

    answer: str
    reasoning: str | None = None
    verdict: Verdict | None = None
    added: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()
    raw: str = field(default="", repr=False)


def system_prompt(request: TaskRequest) -> str:
    """Who the twin is and whom it is talking to."""
    owner = request.owner
    if request.audience == AudienceKind.OWNER:
        who = f"You are the AI twin of {owner}, talking with {owner}. Say 'you' to them."
    else:
        asker = request.asker or (
            "a friend" if request.audience == AudienceKind.FRIEND else "someone"
        )
        who = (
            f"You are the AI twin of {owner}, talking with {asker} on {owner}'s behalf. "
            f"Speak about {owner} in the third person. Share only what the memory below "
            "shows; decline anything else about them."
        )
    rules = {
        TaskKind.MEMORY_QA: "Answer from the memory; if it has nothing on this, say so.",
        TaskKind.CONTEXT_ENHANCE: (
            f"Rewrite the request so the other agent has the personal context it needs about "
            f"{owner}, then list the context you added."
        ),
        TaskKind.CONTEXT_CRITIC: (
            f"Judge the other agent's reply from {owner}'s point of view: give a verdict (fits, "
            "partly, does not fit), say what to change, and list the facts you checked."
        ),
        TaskKind.IDENTITY: "Say who you are.",
        TaskKind.CHAT: f"Reply as {owner} would.",
    }[request.kind]
    return f"{who} {rules}"


def user_prompt(request: TaskRequest, budget: PromptBudget) -> str:
    """The request with its context, in the fixed layout models are trained on."""
    parts: list[str] = []
    if budget.bio and request.bio:
        parts.append(f"[bio]\n{request.bio.strip()}")
    memories = request.context[: budget.memories]
    if memories:
        lines = (m.line(budget.chars_per_memory, focus=request.text) for m in memories)
        parts.append("[memory]\n" + "\n".join(lines))
    if request.kind == TaskKind.CONTEXT_ENHANCE:
        target = f" for {request.target}" if request.target else ""
        parts.append(f"[request{target}]\n{request.text.strip()}")
    elif request.kind == TaskKind.CONTEXT_CRITIC:
        parts.append(f"[request]\n{request.text.strip()}")
        parts.append(f"[reply]\n{(request.reply or '').strip()}")
    else:
        parts.append(f"[message]\n{request.text.strip()}")
    return "\n\n".join(parts)


def render_messages(request: TaskRequest, budget: PromptBudget | None = None) -> list[ChatMessage]:
    """The chat messages for `request`: system, earlier turns, then the request itself."""
    budget = budget or PromptBudget()
    return [
        ChatMessage("system", system_prompt(request)),
        *request.history,
        ChatMessage("user", user_prompt(request, budget)),
    ]


_IDENTITY = re.compile(
    r"\b(who|what) (are|r) (you|u)\b|\bintroduce yourself\b|\btell me about yourself\b"
    r"|\bwhat do you do\b|\bare you (a |an )?(bot|ai|real|human)\b",
    re.IGNORECASE,
)
_QUESTION = re.compile(
    r"\?|^\s*(who|what|when|where|why|how|which|whose|do|does|did|is|are|was|were|can|could|"
    r"will|would|have|has|tell me|remind me)\b",
    re.IGNORECASE,
)


def is_identity_question(text: str) -> bool:
    """ "Who are you?" and its kin: answered from the bio, not from a memory search."""
    return bool(_IDENTITY.search(text))


def is_question(text: str) -> bool:
    """Whether a message asks something (else it is conversation, answered in the owner's voice)."""
    return bool(_QUESTION.search(text))


# -- prompts for other agents (MCP prompt templates) ---------------------------------------------

CONTEXT_PROMPT_MEMORIES = 8


def context_prompt(owner: str, question: str, memories: Sequence[Memory], bio: str) -> str:
    """A prompt for another agent: the question with the owner's memories and bio before it,
    told to cite memory ids and not to guess."""
    lines = [
        f"- [{m.id}] {m.timestamp.strftime('%Y-%m-%d') if m.timestamp else ''} "
        f"{m.author or 'note'} ({m.source_name}): {m.snippet(300)}"
        for m in memories
    ]
    parts = [f"Answer the question below for {owner}, using what their memory says."]
    if bio:
        parts.append(f"About {owner}:\n{bio}")
    parts.append(
        f"Relevant memories of {owner}:\n" + "\n".join(lines)
        if lines
        else f"Memory holds nothing that matches this question about {owner}."
    )
    parts.append(
        f"Question: {question}\n\nIf the memories do not answer it, say so plainly instead "
        "of guessing; cite memory ids for what you rely on."
    )
    return "\n\n".join(parts)


def introduction_prompt(owner: str, to: str, view: ProfileView | None) -> str:
    """A prompt for another agent to introduce the owner to `to` from L1 alone."""
    parts = [f"Write a short, warm introduction of {owner} for {to}, in a few sentences."]
    if view is not None:
        if view.bio():
            parts.append(f"Bio:\n{view.bio()}")
        if view.topics:
            parts.append(
                "What they spend time on:\n"
                + "\n".join(f"- {t.label}: {t.description}" for t in view.topics[:8])
            )
        if view.facts:
            parts.append("Facts:\n" + "\n".join(f"- {f.statement}" for f in view.facts[:12]))
    if len(parts) == 1:
        parts.append(
            f"{owner}'s profile is not built yet: learn about them first with the ask_twin "
            f"tool (e.g. 'Who is {owner}, and what matters to them?')."
        )
    parts.append("Use only what is given here or what the twin tells you; invent nothing.")
    return "\n\n".join(parts)


# -- replies -----------------------------------------------------------------------------------


def render_reply(
    kind: TaskKind,
    answer: str,
    strategy: CoTStrategy = CoTStrategy.WEAK,
    steps: tuple[str, ...] = (),
    *,
    verdict: Verdict | None = None,
    listed: tuple[str, ...] = (),
) -> str:
    """A target reply in the trained format: reasoning per `strategy`, then the answer, with the
    task's own parts (the verdict; the context added or the facts checked)."""
    body = answer.strip()
    if kind == TaskKind.CONTEXT_CRITIC:
        body = f"Verdict: {verdict or Verdict.PARTLY}\n{body}"
    if listed:
        heading = "Context added:" if kind == TaskKind.CONTEXT_ENHANCE else "Checked against:"
        body += f"\n{heading}\n" + "\n".join(f"- {item}" for item in listed)
    if strategy == CoTStrategy.WEAK or not steps:
        return body
    if strategy == CoTStrategy.MULTI_STEP:
        return " ".join(s.strip() for s in steps) + f"\nAnswer: {body}"
    # strong: a bounded, structured block
    bullets = "\n".join(f"- {s.strip()}" for s in steps[:STRONG_MAX_STEPS])
    return f"<think>\n{bullets}\n</think>\n{body}"


STRONG_MAX_STEPS = 4
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_TAG = re.compile(r"</?think>", re.I)
_ANSWER = re.compile(r"^\s*Answer:\s*", re.I | re.MULTILINE)
_VERDICT = re.compile(r"^\s*Verdict:\s*(fits|partly|does not fit)\b[.:]?\s*", re.I | re.MULTILINE)
_LIST = re.compile(r"^\s*(Context added|Checked against):\s*$", re.I | re.MULTILINE)


def split_reasoning(text: str) -> tuple[str | None, str]:
    """(reasoning, answer) of a reply, read by the structure of the formats, whatever the model
    actually emitted: everything up to the last `</think>` is reasoning, opened or not; an
    unclosed `<think>` makes the rest reasoning (the model ran out before answering); in the
    multi-step format, what precedes the last "Answer:" line. No think tag and no "Answer:"
    line: it is all answer. A stray tag never reaches the answer."""
    lowered = text.lower()
    close = lowered.rfind(THINK_CLOSE)
    if close >= 0:
        reasoning, answer = text[:close], text[close + len(THINK_CLOSE) :]
    elif THINK_OPEN in lowered:
        start = lowered.index(THINK_OPEN)
        reasoning, answer = text[start:], text[:start]
    else:
        markers = list(_ANSWER.finditer(text))
        if markers:
            last = markers[-1]
            reasoning, answer = text[: last.start()], text[last.end() :]
        else:
            reasoning, answer = "", text
    reasoning = _TAG.sub("", reasoning).strip()
    answer = _ANSWER.sub("", _TAG.sub("", answer)).strip()
    return reasoning or None, answer


def parse_reply(kind: TaskKind, text: str) -> TaskReply:
    """Read a model's reply back into its parts. Lenient: a model that skips a part still
    yields an answer, never an exception."""
    reasoning, body = split_reasoning(text)
    verdict = None
    if kind == TaskKind.CONTEXT_CRITIC:
        match = _VERDICT.search(body)
        if match:
            verdict = Verdict(match.group(1).lower())
            body = (body[: match.start()] + body[match.end() :]).strip()
    listed: tuple[str, ...] = ()
    match = _LIST.search(body)
    if match:
        items = body[match.end() :].splitlines()
        listed = tuple(i.strip().lstrip("-•* ").strip() for i in items if i.strip())
        body = body[: match.start()].strip()
    return TaskReply(
        answer=body,
        reasoning=reasoning,
        verdict=verdict,
        added=listed if kind == TaskKind.CONTEXT_ENHANCE else (),
        checked=listed if kind == TaskKind.CONTEXT_CRITIC else (),
        raw=text,
    )
