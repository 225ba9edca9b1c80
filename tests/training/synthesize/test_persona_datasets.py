"""Both audiences' datasets from the sample persona, built once for the module.

The datasets are small (a few hundred training samples each, one phrasing per fact) to keep
the build quick; selection takes facts from every source in turn, so the owner's data still
holds the private Monterey application, and the shared data must not hold any of the persona's
private facts anywhere.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from memory.profile.sentences import content_words
from memory.store import MemoryStore
from serving.service import ProfileBios
from training.synthesize import Dataset, Fact, SynthesisLimits, synthesize
from training.synthesize.filters import rendered_again
from training.synthesize.passages import normalise
from training.synthesize.samples import PairReason, PreferencePair, Sample, Split
from training.synthesize.templates import is_l1_fact_template
from twin.privacy import Audience, AudienceKind
from twin.tasks import (
    WITHHELD,
    CoTStrategy,
    PromptBudget,
    TaskKind,
    Verdict,
    nothing_found,
    parse_reply,
    spoken_date,
)

BUDGET = PromptBudget()
LIMITS = SynthesisLimits(phrasings_per_fact=1, train_samples=300, requests_per_template=2)
# The persona's private facts (examples/persona/README.md), as they may be written.
PRIVATE = re.compile(r"remédios|remedios|4071|monterey|helena alves|18[,.]?000", re.I)


def build(
    store: MemoryStore, facts: list[Fact], audience: Audience, limits: SynthesisLimits = LIMITS
) -> Dataset:
    return synthesize(
        store,
        audience=audience,
        owner="Iris Calder",
        strategy=CoTStrategy.STRONG,
        budget=BUDGET,
        facts=facts,
        bio=ProfileBios(store).bio_text(audience),
        seed=7,
        limits=limits,
    )


@pytest.fixture(scope="module")
def owner_data(persona_store: MemoryStore, persona_facts: list[Fact]) -> Dataset:
    return build(persona_store, persona_facts, Audience.owner())


@pytest.fixture(scope="module")
def shared_data(persona_store: MemoryStore, persona_facts: list[Fact]) -> Dataset:
    return build(persona_store, persona_facts, Audience.friend())


def texts_of(sample: Sample | PreferencePair) -> list[str]:
    """Everything a sample or pair would put in front of a model."""
    request = sample.request
    out = [request.text, request.reply or "", request.bio, request.target or ""]
    out += [c.text for c in request.context] + [m.content for m in request.history]
    if isinstance(sample, Sample):
        out.append(sample.reply)
    else:
        out += [sample.chosen, sample.rejected]
    return out


def test_every_sample_renders_and_its_reply_parses_back(
    owner_data: Dataset, shared_data: Dataset
) -> None:
    for data in (owner_data, shared_data):
        for sample in data.samples:
            messages = sample.messages(BUDGET)
            assert messages[0].role == "system" and messages[-2].role == "user"
            assert messages[-1].role == "assistant" and messages[-1].content == sample.reply
            parsed = parse_reply(sample.kind, sample.reply)
            assert parsed.answer
            assert rendered_again(sample.kind, parsed, CoTStrategy.STRONG) == sample.reply
            if sample.kind != TaskKind.CHAT:
                assert parsed.reasoning, sample.reply
                assert len(parsed.reasoning.splitlines()) <= 4
            assert "<think>" not in parsed.answer


def test_every_key_fact_is_in_a_visible_support_memory(
    persona_store: MemoryStore, owner_data: Dataset, shared_data: Dataset
) -> None:
    for data, audience in ((owner_data, Audience.owner()), (shared_data, Audience.friend())):
        ids = sorted({i for s in data.samples for i in s.support})
        visible = persona_store.allowed(ids, audience.memory_filter())
        memories = {m.id: m for m in persona_store.get_many(ids)}
        facts = [s for s in data.samples if s.key_facts]
        assert len(facts) > 150
        for sample in facts:
            assert set(sample.support) <= visible
            shown = parse_reply(sample.kind, sample.reply)
            for fact in sample.key_facts:
                assert fact in " ".join((shown.answer, *shown.added, *shown.checked))
                holders = [memories[i] for i in sample.support]
                assert any(
                    normalise(fact) in normalise(m.text)
                    or (m.timestamp and fact == spoken_date(m.timestamp))
                    for m in holders
                ), (fact, sample.support)


def test_held_out_questions_use_phrasings_never_trained_on(
    owner_data: Dataset, shared_data: Dataset
) -> None:
    for data in (owner_data, shared_data):
        train = {s.template for s in data.split(Split.TRAIN)}
        test = {s.template for s in data.split(Split.TEST)}
        assert test and not train & test
        trained_questions = {s.request.text for s in data.split(Split.TRAIN)}
        assert not trained_questions & {s.request.text for s in data.split(Split.TEST)}
    owner_kinds = {s.kind for s in owner_data.split(Split.TEST)}
    assert {TaskKind.MEMORY_QA, TaskKind.CONTEXT_ENHANCE, TaskKind.CONTEXT_CRITIC} <= owner_kinds
    assert {TaskKind.MEMORY_QA, TaskKind.CHAT} <= {s.kind for s in shared_data.split(Split.TEST)}


def test_the_shared_data_holds_no_private_fact_anywhere(
    owner_data: Dataset, shared_data: Dataset
) -> None:
    shared = [t for item in [*shared_data.samples, *shared_data.pairs] for t in texts_of(item)]
    leaks = [t for t in shared if PRIVATE.search(t)]
    assert not leaks, leaks[:3]
    # …while the owner's model learns the secret
    about = [s for s in owner_data.samples if "Monterey" in s.request.text]
    assert about and all(f in s.reply for s in about for f in s.key_facts)


def test_each_audience_gets_its_own_tasks_and_voice(
    owner_data: Dataset, shared_data: Dataset
) -> None:
    owner_kinds = {s.kind for s in owner_data.samples}
    shared_kinds = {s.kind for s in shared_data.samples}
    assert TaskKind.CHAT not in owner_kinds  # the owner does not chat with their own twin
    assert not {TaskKind.CONTEXT_ENHANCE, TaskKind.CONTEXT_CRITIC} & shared_kinds
    assert all(s.request.audience == AudienceKind.OWNER for s in owner_data.samples)
    assert all(s.request.audience == AudienceKind.FRIEND for s in shared_data.samples)

    declines = [s for s in shared_data.samples if parse_reply(s.kind, s.reply).answer == WITHHELD]
    assert len(declines) >= 7 and all(not s.support and not s.key_facts for s in declines)
    assert not [s for s in owner_data.samples if WITHHELD in s.reply]

    def identity(data: Dataset) -> str:
        sample = next(s for s in data.samples if s.kind == TaskKind.IDENTITY)
        return parse_reply(sample.kind, sample.reply).answer

    assert identity(owner_data).startswith("I'm your AI twin")
    assert identity(shared_data).startswith("I'm the AI twin of Iris Calder")
    # "I" in the owner's notes becomes "you" for the owner
    owner_qa = " ".join(s.reply for s in owner_data.samples if s.kind == TaskKind.MEMORY_QA)
    assert owner_qa.count(" you ") > owner_qa.count(" I ")


def test_enhance_and_critic_samples_have_their_parts(owner_data: Dataset) -> None:
    enhanced = [s for s in owner_data.samples if s.kind == TaskKind.CONTEXT_ENHANCE]
    critiques = [s for s in owner_data.samples if s.kind == TaskKind.CONTEXT_CRITIC]
    assert len(enhanced) >= 10 and len(critiques) >= 10
    for sample in enhanced:
        parsed = parse_reply(sample.kind, sample.reply)
        assert parsed.added and parsed.answer.startswith(sample.request.text)
        assert sample.request.target
        # what was added is in the prompt's context, where the model can read it
        context = normalise(
            " ".join(
                c.line(BUDGET.chars_per_memory, focus=sample.request.text)
                for c in sample.request.context
            )
        )
        assert all(normalise(item) in context for item in parsed.added)
    verdicts = {parse_reply(s.kind, s.reply).verdict for s in critiques}
    assert verdicts == {Verdict.FITS, Verdict.PARTLY, Verdict.DOES_NOT_FIT}
    for sample in critiques:
        parsed = parse_reply(sample.kind, sample.reply)
        assert sample.request.reply and parsed.checked
        if parsed.verdict != Verdict.FITS:
            assert "Change this" in parsed.answer


def test_chat_pairs_carry_the_turns_before_them(shared_data: Dataset) -> None:
    pairs = [s for s in shared_data.samples if s.kind == TaskKind.CHAT]
    assert len(pairs) > 25
    with_history = [s for s in pairs if s.request.history]
    assert len(with_history) > len(pairs) / 2
    for sample in with_history:
        roles = {m.role for m in sample.request.history}
        assert roles <= {"user", "assistant"}
        assert sample.request.asker


def test_context_comes_from_retrieval_and_mostly_holds_the_answer(owner_data: Dataset) -> None:
    qa = [s for s in owner_data.samples if s.kind == TaskKind.MEMORY_QA and s.support]
    assert all(len(s.request.context) <= BUDGET.memories for s in qa)
    shown = [s for s in qa if set(s.support) & {c.id for c in s.request.context}]
    refused = [
        s for s in qa if parse_reply(s.kind, s.reply).answer == nothing_found(s.request.audience)
    ]
    # every answer's memories are in its prompt; the rest say they do not know
    assert len(shown) + len(refused) == len(qa)
    assert 0 < len(refused) / len(qa) < 0.2
    for sample in refused:
        # a "don't know" only beside memories that are not on the question's topic
        asked = {k for k, _ in content_words(sample.request.text)} - {"iris", "calder"}
        for memory in sample.request.context:
            assert not asked & {k for k, _ in content_words(memory.text)}, sample.request.text
    assert any(s.request.bio for s in qa)


def test_questions_on_l1_facts_are_chosen_first(
    persona_store: MemoryStore, persona_facts: list[Fact], owner_data: Dataset
) -> None:
    def on_facts(data: Dataset) -> set[str]:
        return {
            s.key_facts[0]
            for s in data.split(Split.TRAIN)
            if is_l1_fact_template(s.template) and s.key_facts
        }

    small = synthesize(
        persona_store,
        audience=Audience.owner(),
        owner="Iris Calder",
        strategy=CoTStrategy.STRONG,
        budget=BUDGET,
        facts=persona_facts,
        seed=7,
        limits=SynthesisLimits(phrasings_per_fact=1, train_samples=40, requests_per_template=1),
    )
    assert len(small.split(Split.TRAIN)) <= 40
    # a tenth of the data, and still a question on every fact the full data asks about
    assert on_facts(owner_data) <= on_facts(small)
    assert on_facts(owner_data) != set()


def test_a_small_dataset_keeps_every_request_held_out_whole(
    persona_store: MemoryStore, persona_facts: list[Fact], owner_data: Dataset
) -> None:
    tasks = (TaskKind.CONTEXT_ENHANCE, TaskKind.CONTEXT_CRITIC)

    def held_out(data: Dataset) -> set[tuple[TaskKind, str]]:
        return {(s.kind, s.request.text) for s in data.split(Split.TEST) if s.kind in tasks}

    # drafts on the same memories go together; a held-out one with no training draft beside
    # it (a test request of its own) adds nothing to training and must survive any quota
    trained = {(s.kind, s.support) for s in owner_data.split(Split.TRAIN)}
    whole = {
        (s.kind, s.request.text)
        for s in owner_data.split(Split.TEST)
        if s.kind in tasks and (s.kind, s.support) not in trained
    }
    small = build(persona_store, persona_facts, Audience.owner(), replace(LIMITS, train_samples=40))
    # the quota bounds what is trained on; what the run is measured on is not cut with it
    assert len(small.split(Split.TRAIN)) <= 40
    assert {kind for kind, _ in whole} == set(tasks)
    assert whole <= held_out(small) <= held_out(owner_data)


def test_filters_report_what_they_removed(owner_data: Dataset, shared_data: Dataset) -> None:
    for data in (owner_data, shared_data):
        assert set(data.removed) == {"dedupe", "length_and_format", "grounding"}
        assert all(isinstance(n, int) and n >= 0 for n in data.removed.values())
    assert sum(owner_data.removed.values()) + sum(shared_data.removed.values()) > 0
    assert 250 <= len(owner_data.split(Split.TRAIN)) <= 300


def test_preference_pairs_prefer_a_sample_s_reply_and_are_never_identical(
    owner_data: Dataset, shared_data: Dataset
) -> None:
    for data in (owner_data, shared_data):
        assert 0 < len(data.pairs) <= LIMITS.pairs + LIMITS.held_out_pairs
        replies = {s.reply for s in data.samples}
        for pair in data.pairs:
            assert pair.chosen in replies and pair.rejected != pair.chosen
            assert pair.reason in set(PairReason)


def test_a_dataset_survives_saving_and_loading(owner_data: Dataset, tmp_path: Path) -> None:
    owner_data.save(tmp_path)
    again = Dataset.load(tmp_path)
    assert again.content_hash() == owner_data.content_hash()
    assert again.counts() == owner_data.counts() and again.removed == owner_data.removed


# What only the prompt's layout, or a machine, would write.
_SCAFFOLDING = re.compile(r"\[(?:memory|bio|message|request|reply)\]|\bMemory \d|\(noted\b|\bSo: ")
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_OWNER_FIRST_PERSON = re.compile(r"\b(?:I|I['’](?:m|ve|ll|d)|me|my|mine|myself)\b")
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")


def test_no_reply_or_step_shows_a_machine_date_or_the_prompt_s_layout(
    owner_data: Dataset, shared_data: Dataset
) -> None:
    for data in (owner_data, shared_data):
        for sample in data.samples:
            parsed = parse_reply(sample.kind, sample.reply)
            for text in (parsed.answer, parsed.reasoning or "", *parsed.added, *parsed.checked):
                assert not _ISO_DATE.search(text), (sample.request.text, text)
                assert not _SCAFFOLDING.search(text), (sample.request.text, text)


def test_friends_hear_about_iris_in_the_third_person(shared_data: Dataset) -> None:
    answers = [
        parse_reply(s.kind, s.reply)
        for s in shared_data.samples
        if s.kind == TaskKind.MEMORY_QA and s.key_facts
    ]
    assert len(answers) > 100
    for parsed in answers:
        for text in (parsed.answer, parsed.reasoning or ""):
            # what someone else wrote is quoted as they wrote it; the rest is about Iris
            assert not _OWNER_FIRST_PERSON.search(_QUOTED.sub("", text)), text
    # (a reply that is someone else's quote, or a note that names no one, has no "Iris")
    told = [p.answer for p in answers if not _QUOTED.search(p.answer)]
    assert sum("Iris" in a for a in told) > len(told) / 3
    # …while friends ask to her, about Iris, and (as in a conversation) about her by pronoun
    questions = [s.request.text for s in shared_data.samples if s.kind == TaskKind.MEMORY_QA]
    forms = {
        "you": r"\byou(r)?\b",
        "name": r"\bIris\b",
        "pronoun": r"\b(?:she|her|he|his|him|they|their|them)\b",
    }
    counts = {f: sum(bool(re.search(p, q, re.I)) for q in questions) for f, p in forms.items()}
    assert counts["you"] > len(questions) / 6 and counts["name"] > len(questions) / 6, counts
    assert counts["pronoun"] > len(questions) / 30, counts
