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
  refusal (its value is another of the dataset's values: nothing hidden is ever used);
- **wrong verdict**: a critique whose verdict is not the one its checks support (the rest of
  the reply unchanged, so the pair teaches the verdict, which comes first).

Values always come from the audience's own dataset, so the shared model's pairs hold nothing a
friend may not see, and training pairs take them from training samples only (a held-out fact
never appears in training, not even as the wrong answer). Pairs from held-out samples are held
out too: they measure DPO.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence

from training.synthesize.passages import Lexicon, normalise, span_kind
from training.synthesize.samples import PairReason, PreferencePair, Sample, Split
from twin.privacy import AudienceKind
from twin.tasks import WITHHELD, TaskKind, Verdict, nothing_found, split_reasoning

Build = Callable[[Sample, random.Random], str | None]
# the verdict line of a rendered critique, in any strategy (`twin.tasks.render_reply`)
_VERDICT_LINE = re.compile(
    r"^(?:Answer: )?Verdict: (" + "|".join(re.escape(v) for v in Verdict) + r")$", re.MULTILINE
)


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
    pairs: list[PreferencePair] = []
    for split, wanted in ((Split.TRAIN, train_pairs), (Split.TEST, held_out_pairs)):
        # wrong values for held-out pairs may come from anywhere: those pairs only measure
        sources = (
            [s for s in samples if s.split == Split.TRAIN] if split == Split.TRAIN else samples
        )
        builders = _builders(sources, lexicon, first_person)
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


def _builders(
    sources: Sequence[Sample], lexicon: Lexicon, first_person: Callable[[Sample], str | None]
) -> dict[PairReason, Build]:
    """One builder of rejected replies per reason, drawing wrong values from `sources`."""
    values = _values_by_kind(sources, lexicon)
    answers = sorted(
        {_answer(s) for s in sources if s.key_facts and s.kind == TaskKind.MEMORY_QA} - {""}
    )
    return {
        PairReason.PERTURBED: lambda s, r: _perturbed(s, values, lexicon, r),
        PairReason.UNSUPPORTED: lambda s, r: _unsupported(s, answers, r),
        PairReason.WRONG_VOICE: lambda s, r: _wrong_voice(s, first_person),
        PairReason.OVERSHARE: lambda s, r: _overshare(s, values, r),
        PairReason.WRONG_VERDICT: lambda s, r: _wrong_verdict(s, r),
    }


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


def _wrong_verdict(sample: Sample, rng: random.Random) -> str | None:
    """Against a critique: the same reply under another verdict."""
    if sample.kind != TaskKind.CONTEXT_CRITIC:
        return None
    match = _VERDICT_LINE.search(sample.reply)
    if match is None:
        return None
    given = Verdict(match.group(1))
    wrong = rng.choice([v for v in Verdict if v != given])
    return f"{sample.reply[: match.start(1)]}{wrong}{sample.reply[match.end(1) :]}"


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
