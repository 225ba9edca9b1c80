"""The filters every synthesized sample passes, whichever synthesizer wrote it.

Each filter is a function from samples to a `Filtered` (what it kept, how many it removed);
`apply_filters` runs them in order and reports the counts by name, which `Dataset.removed`
keeps:

1. `dedupe`: questions that are the same after normalising, or nearly the same by embedding
   cosine (training samples win over test ones, earlier over later);
2. `length_and_format`: empty parts, prompts or replies too long, replies that do not parse
   back (`twin.tasks.parse_reply`) into exactly the parts they were rendered from, a critic
   without a verdict, key facts missing from what the asker sees;
3. `grounding`: support memories that do not exist or that the audience may not see, and key
   facts that no support memory contains (accents, case and Markdown aside; a memory's date
   counts as part of it);
4. `judge_threshold`: with a judge configured, samples it scores below the threshold (1–5).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from core.calendar import MONTH_NAMES
from lm.base import LLM, ChatMessage, LLMUnavailable, StructuredOutputError
from memory.models import Memory
from memory.store import MemoryStore
from training.synthesize.passages import normalise
from training.synthesize.samples import Sample, Split
from training.synthesize.with_llm import SynthesisError
from twin.privacy import Audience
from twin.tasks import (
    CoTStrategy,
    PromptBudget,
    TaskKind,
    TaskReply,
    parse_reply,
    render_messages,
    render_reply,
)

log = logging.getLogger(__name__)

DUPLICATE_COSINE = 0.95
JUDGE_MIN_SCORE = 4

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Filtered:
    kept: list[Sample]
    removed: int


@dataclass(frozen=True)
class FilterLimits:
    """How long a sample may be, in characters (prompt and reply together, and the reply)."""

    max_sample_chars: int = 2400
    max_reply_chars: int = 800


# -- 1. duplicates -----------------------------------------------------------------------------


def dedupe(
    samples: Sequence[Sample], embed: Embed, threshold: float = DUPLICATE_COSINE
) -> Filtered:
    """Drop questions that repeat an earlier one of the same task, exactly (after normalising)
    or nearly (embedding cosine ≥ `threshold`). Training samples are kept before test ones, so
    a held-out question that is only a copy of a trained one goes."""
    order = sorted(range(len(samples)), key=lambda i: samples[i].split != Split.TRAIN)
    keep: set[int] = set()
    seen: set[tuple[str, str]] = set()
    by_kind: dict[TaskKind, list[int]] = {}
    for i in order:
        key = (str(samples[i].kind), _question_key(samples[i]))
        if key in seen:
            continue
        seen.add(key)
        by_kind.setdefault(samples[i].kind, []).append(i)
    for indices in by_kind.values():
        vectors = embed([question_text(samples[i]) for i in indices])
        kept_vectors: list[np.ndarray] = []
        for i, vector in zip(indices, vectors, strict=True):
            if kept_vectors and float(np.max(np.stack(kept_vectors) @ vector)) >= threshold:
                continue
            kept_vectors.append(vector)
            keep.add(i)
    kept = [s for i, s in enumerate(samples) if i in keep]
    return Filtered(kept, len(samples) - len(kept))


def _question_key(sample: Sample) -> str:
    return re.sub(r"[^\w]+", " ", normalise(question_text(sample))).strip()


def question_text(sample: Sample) -> str:
    """What makes a request the same question: its text, with the other agent's reply for a
    critic and the last turn before it for a chat message ("haha" after different turns is
    not a repeat)."""
    request = sample.request
    parts = [request.text]
    if request.reply:
        parts.append(request.reply)
    if request.history:
        parts.append(request.history[-1].content)
    return "\n".join(parts)


# -- 2. length and format ----------------------------------------------------------------------


def length_and_format(
    samples: Sequence[Sample],
    budget: PromptBudget,
    strategy: CoTStrategy,
    limits: FilterLimits | None = None,
) -> Filtered:
    """Keep samples whose parts are there, whose size fits, and whose reply parses back into
    the parts it was rendered from."""
    limits = limits or FilterLimits()
    kept = [s for s in samples if well_formed(s, budget, strategy, limits)]
    return Filtered(kept, len(samples) - len(kept))


def well_formed(
    sample: Sample, budget: PromptBudget, strategy: CoTStrategy, limits: FilterLimits
) -> bool:
    """Whether one sample passes `length_and_format`."""
    if not sample.request.text.strip() or not sample.reply.strip():
        return False
    if len(sample.reply) > limits.max_reply_chars:
        return False
    size = sum(len(m.content) for m in sample.messages(budget))
    if size > limits.max_sample_chars:
        return False
    parsed = parse_reply(sample.kind, sample.reply)
    if not parsed.answer or rendered_again(sample.kind, parsed, strategy) != sample.reply:
        return False
    if sample.kind == TaskKind.CONTEXT_CRITIC and parsed.verdict is None:
        return False
    if sample.kind == TaskKind.CONTEXT_ENHANCE and not parsed.added:
        return False
    shown = " ".join((parsed.answer, *parsed.added, *parsed.checked))
    return all(fact in shown for fact in sample.key_facts)


def rendered_again(kind: TaskKind, parsed: TaskReply, strategy: CoTStrategy) -> str:
    """A parsed reply rendered back in `strategy`'s format: equal to the original exactly
    when nothing was lost or misread in between."""
    steps: tuple[str, ...] = ()
    if parsed.reasoning:
        if strategy == CoTStrategy.STRONG:
            steps = tuple(line.strip().removeprefix("- ") for line in parsed.reasoning.splitlines())
        else:
            steps = (parsed.reasoning,)
    return render_reply(
        kind,
        parsed.answer,
        strategy,
        steps,
        verdict=parsed.verdict,
        listed=parsed.added or parsed.checked,
    )


# -- 3. grounding ------------------------------------------------------------------------------


def grounding(samples: Sequence[Sample], store: MemoryStore, audience: Audience) -> Filtered:
    """Keep samples whose support memories exist and are visible to `audience` (as is every
    memory in their context), and whose every key fact one of the support memories holds."""
    ids = sorted({i for s in samples for i in (*s.support, *(c.id for c in s.request.context))})
    visible = store.allowed(ids, audience.memory_filter()) if ids else set()
    memories = {m.id: m for m in store.get_many(sorted({i for s in samples for i in s.support}))}
    texts = {mid: _groundable(m) for mid, m in memories.items()}
    kept = []
    for sample in samples:
        used = (*sample.support, *(c.id for c in sample.request.context))
        if any(i not in visible for i in used):
            continue
        if sample.key_facts and not sample.support:
            continue
        if all(
            any(normalise(fact) in texts.get(mid, "") for mid in sample.support)
            for fact in sample.key_facts
        ):
            kept.append(sample)
    return Filtered(kept, len(samples) - len(kept))


def _groundable(memory: Memory) -> str:
    """A memory's text, and its date in the forms an answer may give it."""
    parts = [memory.text]
    if memory.timestamp is not None:
        day = memory.timestamp.date()
        month = MONTH_NAMES[day.month - 1]
        parts += [day.isoformat(), f"{day.day} {month} {day.year}", f"{month} {day.year}"]
    return normalise("\n".join(parts))


# -- 4. judge ----------------------------------------------------------------------------------


class JudgeScore(BaseModel):
    """A judge's score of one sample."""

    # The scores as an enum, not a range: a grammar engine can hold a model to an enum.
    score: Literal[1, 2, 3, 4, 5] = Field(description="5: correct, grounded, in the right voice")
    reason: str = Field(default="", max_length=300)


JUDGE_INSTRUCTIONS = (
    "You check training data for a personal AI twin. Below is a prompt the twin was given "
    "(its memory and a request) and the reply it is meant to learn. Score the reply from 1 "
    "to 5: 5 if it is correct, supported by the memory shown or by well-known facts about "
    "the person, in the right voice and format; 1 if it is wrong or made up."
)


def judge_threshold(
    samples: Sequence[Sample],
    judge: LLM,
    budget: PromptBudget,
    min_score: int = JUDGE_MIN_SCORE,
) -> Filtered:
    """Keep samples the judge scores at least `min_score`. A sample the judge cannot score
    (no valid answer after its retries) is dropped and logged. A judge that cannot be reached
    stops the run at the first sample it fails (SynthesisError): unjudged data must not pass
    as judged, and a dead server must not be waited on once per sample."""
    kept = []
    for done, sample in enumerate(samples):
        try:
            score = judge.structured(judge_messages(sample, budget), JudgeScore).score
        except StructuredOutputError as exc:
            log.warning("the judge could not score sample %s: %s", sample.id, exc)
            continue
        except LLMUnavailable as exc:
            raise SynthesisError(
                f"the judge model is unavailable (it scored {done} of {len(samples)} samples "
                f"before): {exc}"
            ) from exc
        if score >= min_score:
            kept.append(sample)
    return Filtered(kept, len(samples) - len(kept))


def judge_messages(sample: Sample, budget: PromptBudget) -> list[ChatMessage]:
    prompt = "\n\n".join(
        f"[{m.role}]\n{m.content}" for m in render_messages(sample.request, budget)
    )
    return [
        ChatMessage("system", JUDGE_INSTRUCTIONS),
        ChatMessage("user", f"{prompt}\n\n[reply to score]\n{sample.reply}"),
    ]


# -- all of them -------------------------------------------------------------------------------


def apply_filters(
    samples: Sequence[Sample],
    *,
    store: MemoryStore,
    audience: Audience,
    budget: PromptBudget,
    strategy: CoTStrategy,
    embed: Embed,
    judge: LLM | None = None,
    limits: FilterLimits | None = None,
    duplicate_cosine: float = DUPLICATE_COSINE,
    judge_min_score: int = JUDGE_MIN_SCORE,
) -> tuple[list[Sample], dict[str, int]]:
    """Run the filters in order; the samples left and how many each removed."""
    removed: dict[str, int] = {}
    current = list(samples)
    steps: list[tuple[str, Callable[[list[Sample]], Filtered]]] = [
        ("dedupe", lambda s: dedupe(s, embed, duplicate_cosine)),
        ("length_and_format", lambda s: length_and_format(s, budget, strategy, limits)),
        ("grounding", lambda s: grounding(s, store, audience)),
    ]
    if judge is not None:
        steps.append(("judge", lambda s: judge_threshold(s, judge, budget, judge_min_score)))
    for name, step in steps:
        outcome = step(current)
        removed[name] = outcome.removed
        current = outcome.kept
    return current, removed
