"""Preference pairs for DPO: the same request with a reply to prefer and a plausible wrong one.

The preferred reply is always the sample's grounded one. The reply to avoid is built to be
wrong in one way a small model is tempted by:

- **perturbed**: the same reply with its key fact swapped for another value of the same kind
  from another sample of the same dataset (a date for a date, a place for a place);
- **unsupported**: a confident answer where the prompt's memories do not hold one (the
  preferred reply says it does not know);
- **wrong voice**: the right fact in the wrong person: the owner's own first person to the owner
  or to a friend, where the owner is told "you" and a friend hears about the owner;
- **overshare**: for a third party asking what stays private, an answer instead of the
  refusal (its value is another of the dataset's values: nothing hidden is ever used).

Values always come from the audience's own dataset, so the shared model's pairs hold nothing a
friend may not see. Pairs from held-out samples are held out too: they measure DPO.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence

from training.synthesize.passages import Lexicon, normalise, span_kind
from training.synthesize.samples import PairReason, PreferencePair, Sample, Split
from twin.privacy import AudienceKind
from twin.tasks import WITHHELD, TaskKind, nothing_found, split_reasoning

Build = Callable[[Sample, random.Random], str | None]


def preference_pairs(
    samples: Sequence[Sample],
    lexicon: Lexicon,
    *,
    train_pairs: int,
    held_out_pairs: int,
    first_person: Callable[[Sample], str | None],
    seed: int = 0,
) -> list[PreferencePair]:
    """About `train_pairs` pairs from the training samples and `held_out_pairs` from the
    held-out ones, the reasons taken in turn. `first_person` gives a sample's answer in the
    owner's own words (None when it has none), for the wrong-voice pairs."""
    rng = random.Random(seed)
    values = _values_by_kind(samples, lexicon)
    answers = sorted(
        {_answer(s) for s in samples if s.key_facts and s.kind == TaskKind.MEMORY_QA} - {""}
    )
    builders: dict[PairReason, Build] = {
        PairReason.PERTURBED: lambda s, r: _perturbed(s, values, lexicon, r),
        PairReason.UNSUPPORTED: lambda s, r: _unsupported(s, answers, r),
        PairReason.WRONG_VOICE: lambda s, r: _wrong_voice(s, first_person),
        PairReason.OVERSHARE: lambda s, r: _overshare(s, values, r),
    }
    pairs: list[PreferencePair] = []
    for split, wanted in ((Split.TRAIN, train_pairs), (Split.TEST, held_out_pairs)):
        pool = [s for s in samples if s.split == split and s.kind != TaskKind.CHAT]
        rng.shuffle(pool)
        made = 0
        queues = {reason: list(pool) for reason in builders}
        while made < wanted and any(queues.values()):
            for reason, build in builders.items():
                queue = queues[reason]
                while queue and made < wanted:
                    sample = queue.pop()
                    rejected = build(sample, rng)
                    if rejected and rejected.strip() != sample.reply.strip():
                        pairs.append(_pair(sample, rejected, reason))
                        made += 1
                        break
    return pairs


def _perturbed(
    sample: Sample, values: dict[str, list[str]], lexicon: Lexicon, rng: random.Random
) -> str | None:
    if not sample.key_facts:
        return None
    fact = sample.key_facts[0]
    own = normalise(fact)
    options = sorted(
        {
            v
            for v in values.get(_value_kind(fact, sample, lexicon), [])
            if normalise(v) != own and normalise(v) not in normalise(sample.reply)
        }
    )
    if not options or fact not in sample.reply:
        return None
    return sample.reply.replace(fact, rng.choice(options))


def _unsupported(sample: Sample, answers: list[str], rng: random.Random) -> str | None:
    """Against a "don't know" reply: a confident answer the prompt gives no ground for (the
    answer to another question of the dataset)."""
    if _answer(sample) != nothing_found(sample.request.audience) or not answers:
        return None
    return _with_reasoning(sample.reply, rng.choice(answers))


def _wrong_voice(sample: Sample, first_person: Callable[[Sample], str | None]) -> str | None:
    if sample.kind != TaskKind.MEMORY_QA or not sample.key_facts:
        return None
    own_words = first_person(sample)
    if not own_words or not any(fact in own_words for fact in sample.key_facts):
        return None
    return _with_reasoning(sample.reply, own_words)


def _overshare(sample: Sample, values: dict[str, list[str]], rng: random.Random) -> str | None:
    """Against a refusal to a third party: an answer with a value of the dataset's own."""
    if sample.request.audience == AudienceKind.OWNER or _answer(sample) != WITHHELD:
        return None
    others = [v for kind in sorted(values) for v in values[kind]]
    if not others:
        return None
    return _with_reasoning(sample.reply, f"Sure: {rng.choice(others)}.")


def _answer(sample: Sample) -> str:
    return split_reasoning(sample.reply)[1]


def _with_reasoning(reply: str, answer: str) -> str:
    """`answer` after the reasoning block of `reply` (the pair differs in the answer only)."""
    cut = reply.lower().rfind("</think>")
    return f"{reply[: cut + len('</think>')]}\n{answer}" if cut >= 0 else answer


def _values_by_kind(samples: Sequence[Sample], lexicon: Lexicon) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for sample in samples:
        for fact in sample.key_facts:
            values.setdefault(_value_kind(fact, sample, lexicon), []).append(fact)
    return values


def _value_kind(fact: str, sample: Sample, lexicon: Lexicon) -> str:
    """What a value is, for swapping like with like: its span kind, else its template family."""
    kind = span_kind(fact, lexicon)
    return str(kind) if kind else f"{sample.kind}:{sample.template.split('.')[0]}"


def _pair(sample: Sample, rejected: str, reason: PairReason) -> PreferencePair:
    digest = hashlib.sha256(f"{sample.id}\0{rejected}\0{reason}".encode()).hexdigest()[:16]
    return PreferencePair(
        id=digest,
        request=sample.request,
        chosen=sample.reply,
        rejected=rejected,
        reason=reason,
        split=sample.split,
    )
