"""Preference pairs for DPO: the same request with a reply to prefer and one to avoid.

The preferred reply is always the sample's grounded one. The other is, by what is available:

- `perturbed_pairs`: the same reply with its key fact swapped for another value of the same
  kind from another sample of the same dataset (a date for a date, a place for a place), so the
  shared model's pairs can only hold what that audience may see;
- `model_pairs`: the SFT model's own answer, when it misses every key fact;
- `judge_pairs`: with a judge, the lower-ranked of two answers sampled from the SFT model.

Pairs are never identical, and each builder stops at about `share` (20%, as in the paper) of the
training set.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import replace

from training.synthesize.extract import Lexicon, normalise, span_kind
from training.synthesize.filters import JudgeScore, judge_messages
from training.synthesize.samples import PreferencePair, Sample, Split
from twin.llm.base import LLM, StructuredOutputError
from twin.tasks import PromptBudget, TaskKind, TaskRequest, parse_reply

PAIR_SHARE = 0.2

Generate = Callable[[TaskRequest], str]


def pair_target(samples: Sequence[Sample], share: float = PAIR_SHARE) -> int:
    """How many pairs `share` of the training samples is."""
    return round(share * sum(1 for s in samples if s.split == Split.TRAIN))


def perturbed_pairs(
    samples: Sequence[Sample],
    lexicon: Lexicon,
    *,
    share: float = PAIR_SHARE,
    seed: int = 0,
) -> list[PreferencePair]:
    """Replies with their key fact swapped for another value of its kind from another sample
    (values come from `samples` only)."""
    rng = random.Random(seed)
    candidates = _candidates(samples, rng)
    values: dict[str, list[str]] = {}
    for sample in candidates:
        for fact in sample.key_facts:
            values.setdefault(_value_kind(fact, sample, lexicon), []).append(fact)
    pairs = []
    for sample in candidates:
        if len(pairs) >= pair_target(samples, share):
            break
        fact = sample.key_facts[0]
        own = normalise(fact)
        options = sorted(
            {
                v
                for v in values.get(_value_kind(fact, sample, lexicon), [])
                if normalise(v) != own and normalise(v) not in normalise(sample.reply)
            }
        )
        if not options:
            continue
        rejected = sample.reply.replace(fact, rng.choice(options))
        if rejected != sample.reply:
            pairs.append(_pair(sample, rejected, "perturbed"))
    return pairs


def model_pairs(
    samples: Sequence[Sample], generate: Generate, *, share: float = PAIR_SHARE, seed: int = 0
) -> list[PreferencePair]:
    """The SFT model's own answers that miss every key fact, as the replies to avoid."""
    rng = random.Random(seed)
    pairs = []
    for sample in _candidates(samples, rng):
        if len(pairs) >= pair_target(samples, share):
            break
        answer = generate(sample.request)
        if _differs(answer, sample.reply) and not _has_fact(sample, answer):
            pairs.append(_pair(sample, answer, "sft-wrong"))
    return pairs


def judge_pairs(
    samples: Sequence[Sample],
    generate: Generate,
    judge: LLM,
    budget: PromptBudget,
    *,
    share: float = PAIR_SHARE,
    seed: int = 0,
) -> list[PreferencePair]:
    """Two sampled answers per request (`generate` should sample, not decode greedily); the
    judge ranks them and the lower one becomes the reply to avoid."""
    rng = random.Random(seed)
    pairs = []
    for sample in _candidates(samples, rng):
        if len(pairs) >= pair_target(samples, share):
            break
        answers = [a for a in (generate(sample.request), generate(sample.request)) if a.strip()]
        scored = []
        for answer in answers:
            try:
                candidate = replace(sample, reply=answer)
                score = judge.structured(judge_messages(candidate, budget), JudgeScore).score
            except StructuredOutputError:
                continue
            scored.append((score, answer))
        if len(scored) < 2:
            continue
        worse = min(scored, key=lambda item: item[0])[1]
        if _differs(worse, sample.reply):
            pairs.append(_pair(sample, worse, "judge-lower"))
    return pairs


def _candidates(samples: Sequence[Sample], rng: random.Random) -> list[Sample]:
    """Training samples with a fact to get wrong, in a seeded order."""
    chosen = [
        s for s in samples if s.split == Split.TRAIN and s.key_facts and s.kind != TaskKind.CHAT
    ]
    rng.shuffle(chosen)
    return chosen


def _value_kind(fact: str, sample: Sample, lexicon: Lexicon) -> str:
    """What a value is, for swapping like with like: its span kind, else its template family."""
    kind = span_kind(fact, lexicon)
    return str(kind) if kind else f"{sample.kind}:{sample.template.split('.')[0]}"


def _has_fact(sample: Sample, answer: str) -> bool:
    parsed = parse_reply(sample.kind, answer)
    shown = normalise(" ".join((parsed.answer, *parsed.added, *parsed.checked)))
    return any(normalise(fact) in shown for fact in sample.key_facts)


def _differs(answer: str, reply: str) -> bool:
    return bool(answer.strip()) and answer.strip() != reply.strip()


def _pair(sample: Sample, rejected: str, reason: str) -> PreferencePair:
    digest = hashlib.sha256(f"{sample.id}\0{rejected}\0{reason}".encode()).hexdigest()[:16]
    return PreferencePair(
        id=digest, request=sample.request, chosen=sample.reply, rejected=rejected, reason=reason
    )
