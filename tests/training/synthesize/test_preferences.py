"""DPO pairs: plausible wrong replies of five kinds, never identical to the right one, values
only from the same dataset (training pairs from training samples), held-out pairs from held-out
samples."""

from __future__ import annotations

import re
from collections import Counter

from training.synthesize.passages import Lexicon
from training.synthesize.preferences import preference_pairs
from training.synthesize.samples import PairReason, PreferencePair, Sample, Split
from twin.privacy import AudienceKind
from twin.tasks import (
    WITHHELD,
    CoTStrategy,
    TaskKind,
    TaskRequest,
    Verdict,
    nothing_found,
    parse_reply,
    render_reply,
    split_reasoning,
)

LEXICON = Lexicon(people=frozenset(), proper=frozenset({"Lisbon", "Bergen", "Oslo", "Tromsø"}))
DATES = ["3 March 2025", "14 May 2026", "9 August 2026", "21 June 2024", "1 April 2023"]
PLACES = ["Lisbon", "Bergen", "Oslo"]
OWN_WORDS = "I moved there on {fact}, finally!"
HELD_OUT_ONLY = "Tromsø"


def qa(
    i: int,
    fact: str,
    *,
    split: Split = Split.TRAIN,
    audience: AudienceKind = AudienceKind.OWNER,
    answer: str | None = None,
) -> Sample:
    request = TaskRequest(TaskKind.MEMORY_QA, "Nora Berg", audience, f"Question {i}?")
    said = answer if answer is not None else f"You moved on {fact}."
    reply = render_reply(TaskKind.MEMORY_QA, said, CoTStrategy.STRONG, (f"It says: {fact}.",))
    keys = (fact,) if answer is None else ()
    return Sample(f"s{i}", request, reply, support=("m",), key_facts=keys, split=split)


def critique(i: int, verdict: Verdict, *, strategy: CoTStrategy = CoTStrategy.WEAK) -> Sample:
    request = TaskRequest(
        TaskKind.CONTEXT_CRITIC,
        "Nora Berg",
        AudienceKind.OWNER,
        f"Plan my move {i}.",
        reply="Oslo.",
    )
    reply = render_reply(
        TaskKind.CONTEXT_CRITIC,
        "Oslo is right.",
        strategy,
        ("The reply says Oslo, as your note does.",),
        verdict=verdict,
        listed=("I live in Oslo",),
    )
    return Sample(f"c{i}", request, reply, support=("m",))


def samples() -> list[Sample]:
    chat = Sample("chat", TaskRequest(TaskKind.CHAT, "Nora Berg", AudienceKind.FRIEND, "hi"), "hi")
    out = [qa(i, d) for i, d in enumerate(DATES * 2)]
    out += [qa(20 + i, p) for i, p in enumerate(PLACES)]
    out += [qa(30, "-", answer=nothing_found(AudienceKind.OWNER))]
    friend = AudienceKind.FRIEND
    out += [qa(31, "-", audience=friend, answer=WITHHELD)]
    out += [critique(40, Verdict.FITS), critique(41, Verdict.DOES_NOT_FIT)]
    out += [critique(42 + i, Verdict.PARTLY, strategy=s) for i, s in enumerate(CoTStrategy)]
    out += [chat, qa(50, DATES[0], split=Split.TEST), qa(51, PLACES[1], split=Split.TEST)]
    # a value only a held-out sample holds
    out += [qa(52, HELD_OUT_ONLY, split=Split.TEST)]
    return out


def first_person(sample: Sample) -> str | None:
    return OWN_WORDS.format(fact=sample.key_facts[0]) if sample.key_facts else None


def pairs(train: int = 12, held_out: int = 2, seed: int = 1) -> list[PreferencePair]:
    return preference_pairs(
        samples(),
        LEXICON,
        train_pairs=train,
        held_out_pairs=held_out,
        first_person=first_person,
        seed=seed,
    )


def test_every_kind_of_wrong_reply_is_made_in_turn() -> None:
    made = pairs()
    train = [p for p in made if p.split == Split.TRAIN]
    assert len(train) == 12
    counts = Counter(p.reason for p in train)
    assert set(counts) == set(PairReason)
    # taken in turn: no kind crowds the others out while they still have candidates
    assert counts[PairReason.PERTURBED] >= 3 and counts[PairReason.WRONG_VOICE] >= 3
    for pair in made:
        assert pair.rejected.strip() != pair.chosen.strip()
        assert split_reasoning(pair.rejected)[1] != split_reasoning(pair.chosen)[1]


def test_held_out_pairs_come_from_held_out_samples_only() -> None:
    made = pairs()
    held_out = [p for p in made if p.split == Split.TEST]
    assert len(held_out) == 2
    assert len(pairs(train=0, held_out=3)) == 3
    test_requests = {s.request for s in samples() if s.split == Split.TEST}
    assert {p.request for p in held_out} <= test_requests
    assert not {p.request for p in made if p.split == Split.TRAIN} & test_requests


def test_perturbed_replies_swap_the_fact_for_another_of_its_kind() -> None:
    for pair in (p for p in pairs(train=40) if p.reason == PairReason.PERTURBED):
        chosen = next(s for s in samples() if s.request == pair.request)
        fact = chosen.key_facts[0]
        pool = DATES if fact in DATES else PLACES
        swapped = next(v for v in pool if v in pair.rejected and v != fact)
        # the wrong value is everywhere the right one was, reasoning included
        assert fact not in pair.rejected
        assert pair.rejected.count(swapped) == pair.chosen.count(fact) == 2


def test_training_pairs_never_use_a_value_only_held_out_samples_hold() -> None:
    made = pairs(train=60, held_out=0, seed=2)
    assert any(p.reason == PairReason.PERTURBED for p in made)
    assert not [p for p in made if HELD_OUT_ONLY in p.rejected]
    held_out = pairs(train=0, held_out=3, seed=2)
    assert any(HELD_OUT_ONLY in p.chosen for p in held_out)


def test_wrong_verdict_changes_the_verdict_line_only() -> None:
    judged = [p for p in pairs(train=60) if p.reason == PairReason.WRONG_VERDICT]
    assert {p.request.kind for p in judged} == {TaskKind.CONTEXT_CRITIC}
    # one for each critique, whatever its chain-of-thought format
    assert len(judged) == 5
    for pair in judged:
        chosen = parse_reply(TaskKind.CONTEXT_CRITIC, pair.chosen)
        rejected = parse_reply(TaskKind.CONTEXT_CRITIC, pair.rejected)
        assert rejected.verdict is not None and rejected.verdict != chosen.verdict
        assert (rejected.answer, rejected.checked) == (chosen.answer, chosen.checked)


def test_wrong_voice_is_the_owners_own_first_person() -> None:
    voiced = [p for p in pairs(train=40) if p.reason == PairReason.WRONG_VOICE]
    assert voiced
    for pair in voiced:
        reasoning, answer = split_reasoning(pair.rejected)
        assert re.fullmatch(r"I moved there on .+, finally!", answer)
        # the reasoning stays the same: the pair differs in the answer's voice only
        assert reasoning == split_reasoning(pair.chosen)[0]


def test_unsupported_and_overshare_answer_where_the_twin_should_not() -> None:
    made = pairs(train=40)
    unsupported = [p for p in made if p.reason == PairReason.UNSUPPORTED]
    overshare = [p for p in made if p.reason == PairReason.OVERSHARE]
    assert unsupported and overshare
    answers = {split_reasoning(s.reply)[1] for s in samples() if s.key_facts}
    for pair in unsupported:
        assert split_reasoning(pair.chosen)[1] == nothing_found(AudienceKind.OWNER)
        assert split_reasoning(pair.rejected)[1] in answers
    values = set(DATES) | set(PLACES)
    for pair in overshare:
        assert split_reasoning(pair.chosen)[1] == WITHHELD
        said = split_reasoning(pair.rejected)[1]
        assert said.startswith("Sure: ") and said[6:-1] in values


def test_pairs_are_deterministic_for_a_seed() -> None:
    assert pairs(seed=3) == pairs(seed=3)
    assert pairs(seed=3) != pairs(seed=4)
