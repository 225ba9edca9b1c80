"""Quick held-out evaluation: does the trained model say the key facts?

Each held-out sample carries the strings a correct reply must contain (`Sample.key_facts`). The
model answers the sample's prompt (the same rendering training used, retrieved memories
included) and a reply counts as correct when what the asker would see contains every key fact,
compared without case or accents. Samples without key facts are not graded. The same check
tells the pipeline which of the SFT model's own answers make good rejected replies for DPO.

Hand-written questions (a persona's `questions.jsonl`, one JSON object per line: question,
audience "self" or "friend", accepted answers, private) are `PersonaQuestion`s: the demo asks
them and the benchmarks score them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from core.progress import Progress
from lm.base import LLM, GenerationOptions
from training.synthesize.passages import normalise
from training.synthesize.samples import Sample
from twin.privacy import Audience
from twin.tasks import PromptBudget, parse_reply

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GradedAnswer:
    """One held-out sample, what the model said, and whether it had the key facts."""

    sample_id: str
    kind: str
    question: str
    key_facts: tuple[str, ...]
    answer: str
    correct: bool


@dataclass
class Evaluation:
    """Graded answers of one model on held-out samples."""

    model: str
    graded: list[GradedAnswer] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """The share of graded samples answered with all their key facts (0 when none)."""
        if not self.graded:
            return 0.0
        return sum(g.correct for g in self.graded) / len(self.graded)

    def by_kind(self) -> dict[str, float]:
        """Accuracy per task kind."""
        kinds: dict[str, list[bool]] = {}
        for g in self.graded:
            kinds.setdefault(g.kind, []).append(g.correct)
        return {kind: sum(marks) / len(marks) for kind, marks in sorted(kinds.items())}

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat metrics for a manifest: `<prefix>.key_fact_accuracy` and one per task kind."""
        out = {
            f"{prefix}.key_fact_accuracy": round(self.accuracy, 4),
            f"{prefix}.graded": float(len(self.graded)),
        }
        for kind, accuracy in self.by_kind().items():
            out[f"{prefix}.{kind}.key_fact_accuracy"] = round(accuracy, 4)
        return out

    def save(self, path: Path) -> None:
        data = {
            "model": self.model,
            "accuracy": self.accuracy,
            "by_kind": self.by_kind(),
            "graded": [asdict(g) for g in self.graded],
        }
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Evaluation:
        data = json.loads(path.read_text(encoding="utf-8"))
        graded = [GradedAnswer(**{**g, "key_facts": tuple(g["key_facts"])}) for g in data["graded"]]
        return cls(model=data["model"], graded=graded)


class Asker(StrEnum):
    """Who asks a test question, as `questions.jsonl` writes it."""

    OWNER = "self"
    FRIEND = "friend"

    @property
    def audience(self) -> Audience:
        """The audience the twin answers this asker in."""
        return Audience.owner() if self is Asker.OWNER else Audience.friend()


class Judgement(StrEnum):
    """How a reply to a test question is judged."""

    RIGHT = "right"
    WRONG = "wrong"
    # a friend asking for something private: right is saying none of the answers
    KEPT_OUT = "kept out"
    LEAKED = "leaked"


@dataclass(frozen=True)
class PersonaQuestion:
    """A hand-written question about the owner, who asks it, and the answers that count."""

    question: str
    asker: Asker
    answers: tuple[str, ...]
    private: bool = False

    @property
    def withhold(self) -> bool:
        """A friend asking for something private: right is saying none of the answers."""
        return self.private and self.asker is Asker.FRIEND

    @property
    def group(self) -> str:
        return f"{self.asker.value}{'_private' if self.private else ''}"

    def judged(self, reply: str) -> Judgement:
        """Right or wrong; for a question to withhold, kept out (no answer was said) or
        leaked."""
        said = any(normalise(a) in normalise(reply) for a in self.answers)
        if self.withhold:
            return Judgement.LEAKED if said else Judgement.KEPT_OUT
        return Judgement.RIGHT if said else Judgement.WRONG

    def right(self, reply: str) -> bool:
        return self.judged(reply) in (Judgement.RIGHT, Judgement.KEPT_OUT)


def load_questions(path: Path) -> list[PersonaQuestion]:
    """The questions in a `questions.jsonl`; a malformed line is an error naming it."""
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            questions.append(
                PersonaQuestion(
                    row["question"],
                    Asker(row["audience"]),
                    tuple(row["answers"]),
                    bool(row.get("private", False)),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {number}: not a question ({exc})") from exc
    return questions


def has_key_facts(reply: str, key_facts: Sequence[str]) -> bool:
    """Whether `reply` contains every key fact (no key facts: trivially true)."""
    text = normalise(reply)
    return all(normalise(fact) in text for fact in key_facts)


def visible_text(sample: Sample, raw_reply: str) -> str:
    """What the asker would see of a raw model reply: the answer and any listed items, without
    the reasoning."""
    parsed = parse_reply(sample.kind, raw_reply)
    return "\n".join([parsed.answer, *parsed.added, *parsed.checked])


def answer_samples(
    llm: LLM,
    samples: Sequence[Sample],
    budget: PromptBudget,
    max_new_tokens: int,
    progress: Progress | None = None,
) -> list[str]:
    """The model's raw replies to each sample's prompt, greedily."""
    options = GenerationOptions(max_tokens=max_new_tokens, temperature=0.0)
    replies = []
    for i, sample in enumerate(samples):
        replies.append(llm.complete(sample.messages(budget)[:-1], options))
        if progress:
            progress(i + 1, len(samples))
    return replies


def evaluate_key_facts(
    llm: LLM,
    samples: Sequence[Sample],
    budget: PromptBudget,
    *,
    max_new_tokens: int,
    name: str = "",
    progress: Progress | None = None,
) -> Evaluation:
    """Let `llm` answer every sample that has key facts, and grade the replies."""
    gradable = [s for s in samples if s.key_facts]
    replies = answer_samples(llm, gradable, budget, max_new_tokens, progress)
    evaluation = Evaluation(model=name or llm.name)
    for sample, raw in zip(gradable, replies, strict=True):
        shown = visible_text(sample, raw)
        evaluation.graded.append(
            GradedAnswer(
                sample_id=sample.id,
                kind=str(sample.kind),
                question=sample.request.text,
                key_facts=sample.key_facts,
                answer=raw,
                correct=has_key_facts(shown, sample.key_facts),
            )
        )
    log.info(
        "%s: key-fact accuracy %.3f on %d held-out samples %s",
        evaluation.model,
        evaluation.accuracy,
        len(evaluation.graded),
        evaluation.by_kind(),
    )
    return evaluation
