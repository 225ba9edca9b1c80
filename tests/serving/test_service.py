"""The Twin service end to end on the persona: retrieval, model, privacy guard, fallbacks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest

from lm.base import ChatLLM, ChatMessage, GenerationOptions
from memory.models import Kind
from serving.answerers import Choice
from serving.service import FALLBACK_CHARS, Twin, TwinReply, cite
from tests.stored import stored_memory
from tests.twin_fixtures import promote_a_copy
from twin.config import AnswerSettings
from twin.privacy import Audience, AudienceKind
from twin.tasks import WITHHELD, TaskKind, nothing_found


def test_answer_uses_memory_and_the_registered_model(persona_twin: Twin) -> None:
    reply = persona_twin.answer("What happened to Biscuit's paw?")
    assert reply.kind == TaskKind.MEMORY_QA
    assert reply.found and reply.evidence
    assert any("paw" in e.snippet.lower() for e in reply.evidence)
    assert reply.model.endswith("/owner")
    assert 0.0 < reply.search_similarity <= 1.0
    assert reply.text


def test_nothing_in_memory_is_said_plainly(persona_twin: Twin) -> None:
    reply = persona_twin.answer("What is qwertyuiop zxcvbnm?")
    assert not reply.found
    assert reply.text == nothing_found(Audience.owner().kind)


def test_conversation_and_introductions_reach_the_model(persona_twin: Twin) -> None:
    chat = persona_twin.answer("haha qwertyuiop zxcvbnm")
    assert chat.kind == TaskKind.CHAT and chat.model.endswith("/owner")
    intro = persona_twin.answer("Who are you?", Audience.friend("telegram:9"))
    assert intro.kind == TaskKind.IDENTITY and intro.model.endswith("/shared")


def test_friends_get_the_shared_model_and_no_private_evidence(persona_twin: Twin) -> None:
    reply = persona_twin.answer(
        "Where is Iris interviewing for a job?", Audience.friend("telegram:9")
    )
    assert reply.model.endswith("/shared") or reply.withheld or not reply.found
    for e in reply.evidence:
        memory = persona_twin.store.get(e.memory_id)
        assert memory is not None and memory.visibility.value != "private"
    assert "Monterey" not in reply.text


def test_guard_blocks_a_reply_naming_a_private_fact(persona_twin: Twin) -> None:
    friend = Audience.friend("telegram:9")
    blocked = persona_twin.guard.check("Oh she's interviewing at Monterey Bay Aquarium!", friend)
    assert not blocked.allowed and "monterey" in blocked.reason
    code = persona_twin.guard.check("The door code is 4071", friend)
    assert not code.allowed
    fine = persona_twin.guard.check("Biscuit is a rescue greyhound and he's doing great.", friend)
    assert fine.allowed, fine.reason
    assert persona_twin.guard.check("Monterey", Audience.owner()).allowed
    assert WITHHELD


def test_the_loaded_model_is_kept_until_a_new_version(persona_twin: Twin) -> None:
    first = persona_twin.models.for_audience(AudienceKind.OWNER)
    persona_twin.answer("What happened to Biscuit's paw?")
    again = persona_twin.models.for_audience(AudienceKind.OWNER)
    assert first is not None and again is not None and again.llm is first.llm


def test_a_promoted_version_is_picked_up_without_restart(persona_twin: Twin) -> None:
    first = persona_twin.answer("Biscuit's paw").model
    version = promote_a_copy(persona_twin.models.registry)
    second = persona_twin.answer("Biscuit's paw").model
    assert first != second and second.startswith(version)


def test_enhance_and_critique_run(persona_twin: Twin) -> None:
    enhanced = persona_twin.enhance("Plan me a dinner in Kyoto", target="a travel agent")
    assert enhanced.kind == TaskKind.CONTEXT_ENHANCE and enhanced.text
    critique = persona_twin.critique("Suggest a dinner", "Try the steakhouse, great ribs")
    assert critique.kind == TaskKind.CONTEXT_CRITIC and critique.text


def test_async_answer(persona_twin: Twin) -> None:
    reply = asyncio.run(persona_twin.aanswer("What's Biscuit?"))
    assert reply.found


class OnlyReasoning(ChatLLM):
    """A model stuck repeating its think tag: it never reaches an answer."""

    def __init__(self) -> None:
        super().__init__(GenerationOptions())

    @property
    def name(self) -> str:
        return "only-reasoning"

    def _complete(self, messages: list[ChatMessage], options: GenerationOptions) -> str:
        return "<think>\n" * 20

    def _stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        yield self._complete(messages, options)


def test_a_model_that_gives_no_answer_is_not_taken_for_empty_memory(
    persona_twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    choose = persona_twin.models.choose

    def stuck(kind: AudienceKind) -> Choice:
        choice = choose(kind)
        assert choice.answerer is not None
        return Choice(replace(choice.answerer, llm=OnlyReasoning()))

    monkeypatch.setattr(persona_twin.models, "choose", stuck)
    reply = persona_twin.answer("What happened to Biscuit's paw?")
    # the memories about the paw are shown, and the faces are told the model failed
    assert reply.text != nothing_found(Audience.owner().kind)
    assert reply.evidence and reply.text == _cited(
        persona_twin, reply, "What happened to Biscuit's paw?"
    )
    assert reply.model == "retrieval" and "gave no answer" in reply.model_problem


class RecordingLLM(OnlyReasoning):
    """Answers "Fine." and keeps the options each call was given."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[GenerationOptions] = []

    def _complete(self, messages: list[ChatMessage], options: GenerationOptions) -> str:
        self.calls.append(options)
        return "Fine."


def test_a_reply_is_capped_a_little_past_the_longest_the_model_learned(
    persona_twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    choose = persona_twin.models.choose
    llm = RecordingLLM()

    def recorded(kind: AudienceKind) -> Choice:
        choice = choose(kind)
        assert choice.answerer is not None
        trained = {TaskKind.MEMORY_QA: 12, TaskKind.CONTEXT_CRITIC: 500}
        return Choice(replace(choice.answerer, llm=llm, longest_replies=trained))

    monkeypatch.setattr(persona_twin.models, "choose", recorded)
    persona_twin.answer("What happened to Biscuit's paw?")
    persona_twin.critique("Suggest a dinner", "Try the steakhouse, great ribs")
    persona_twin.enhance("Plan me a dinner in Kyoto", target="a travel agent")
    most = choose(AudienceKind.OWNER).answerer.max_new_tokens  # type: ignore[union-attr]
    # a quarter past the longest trained reply and a few tokens; never past the maximum; a task
    # it was not trained on gets the maximum
    assert most > 12 + 3 + 8
    assert [c.max_tokens for c in llm.calls] == [12 + 3 + 8, most, most]


class Scripted(RecordingLLM):
    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    def _complete(self, messages: list[ChatMessage], options: GenerationOptions) -> str:
        return self.reply


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        ("Biscuit cut his paw on some glass.", True),  # says what memory holds
        ("Something happened to Biscuit's paw.", False),  # echoes the question
        ("Biscuit's paw was hurt by Gandalf in 1987.", False),  # invents a name and a year
    ],
)
def test_a_memory_answer_that_memory_does_not_support_gives_way_to_the_memory(
    persona_twin: Twin, monkeypatch: pytest.MonkeyPatch, reply: str, shown: bool
) -> None:
    checked = _answering_with(persona_twin, monkeypatch, reply)
    answer = persona_twin.answer("What happened to Biscuit's paw?")
    assert answer.found and answer.evidence
    if shown:
        assert answer.text == reply and answer.model.endswith("/owner")
    else:
        assert answer.model == "retrieval"
        assert answer.text == _cited(persona_twin, answer, "What happened to Biscuit's paw?")
        assert not answer.model_problem  # the model works; this answer was not good enough
    monkeypatch.setattr(
        persona_twin.settings, "answers", checked.model_copy(update={"grounded_only": False})
    )
    assert persona_twin.answer("What happened to Biscuit's paw?").text == reply


@pytest.mark.parametrize("kind", [TaskKind.MEMORY_QA, TaskKind.CONTEXT_CRITIC])
def test_a_reply_reciting_its_instructions_gives_way_to_the_memory(
    persona_twin: Twin, monkeypatch: pytest.MonkeyPatch, kind: TaskKind
) -> None:
    recited = "You're the AI twin of Iris Calder, talking with Iris Calder. Say you to them."
    checked = _answering_with(persona_twin, monkeypatch, recited)

    def ask() -> TwinReply:
        if kind == TaskKind.MEMORY_QA:
            return persona_twin.answer("What happened to Biscuit's paw?")
        return persona_twin.critique("Brief a dog walker about Biscuit", "He loves long runs.")

    shown = ask()
    assert shown.kind == kind and shown.model == "retrieval" and shown.evidence
    assert "AI twin" not in shown.text and not shown.model_problem
    monkeypatch.setattr(
        persona_twin.settings, "answers", checked.model_copy(update={"grounded_only": False})
    )
    assert ask().text == recited


def test_an_answer_of_the_wrong_kind_gives_way_to_the_memory(
    persona_twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    _answering_with(persona_twin, monkeypatch, "Biscuit cut his paw on some glass.")
    # grounded words, but no date for a "when" question
    question = "When did Biscuit cut his paw?"
    answer = persona_twin.answer(question)
    assert answer.model == "retrieval"
    assert answer.text == _cited(persona_twin, answer, question)
    assert persona_twin.answer("What happened to Biscuit's paw?").model.endswith("/owner")


def test_memory_shown_instead_of_an_answer_is_the_part_about_the_question(
    persona_twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = Audience.owner()
    found = persona_twin.retriever.search(
        "food notes vegetarian coriander", k=10, flt=owner.memory_filter()
    )
    notes = next(h for h in found if "Vegetarian" in h.memory.text)
    # a long memory whose start says nothing about bread
    assert notes.memory.text.index("sourdough") > FALLBACK_CHARS
    monkeypatch.setattr(persona_twin.retriever, "search", lambda *args, **kwargs: [notes])
    _answering_with(persona_twin, monkeypatch, "I think something of it.")
    answer = persona_twin.answer("Do I bake my own bread?", owner)
    assert answer.model == "retrieval"
    assert "I bake my own sourdough" in answer.text
    assert len(answer.text) <= FALLBACK_CHARS + len("Your note of 30 November 2026 says: “”")


def _answering_with(twin: Twin, monkeypatch: pytest.MonkeyPatch, reply: str) -> AnswerSettings:
    """Every model of `twin` answers `reply`, and answers are checked (grounded_only); returns
    the checked settings."""
    choose = twin.models.choose

    def scripted(kind: AudienceKind) -> Choice:
        choice = choose(kind)
        assert choice.answerer is not None
        return Choice(replace(choice.answerer, llm=Scripted(reply)))

    monkeypatch.setattr(twin.models, "choose", scripted)
    checked = twin.settings.answers.model_copy(update={"grounded_only": True})
    monkeypatch.setattr(twin.settings, "answers", checked)
    return checked


def _cited(twin: Twin, reply: TwinReply, question: str) -> str:
    """What the twin says when it shows memory instead of a model's answer: the top memory."""
    top = twin.store.get(reply.evidence[0].memory_id)
    assert top is not None
    return cite(top, question, AudienceKind.OWNER, twin.owner)


def test_memory_shown_is_cited_as_a_person_would_cite_it() -> None:
    owner, friend = AudienceKind.OWNER, AudienceKind.FRIEND
    note = stored_memory("Sourdough\nStarter: **Hamish**, born in Edinburgh.")
    assert cite(note, "starter", owner, "Iris Calder") == (
        "Your note of 1 May 2026 says: “Sourdough Starter: Hamish, born in Edinburgh.”"
    )
    assert cite(note, "starter", friend, "Iris Calder").startswith("Iris's note of 1 May 2026 says")
    mine = stored_memory("Off to Kyoto!", kind=Kind.CHAT, author="Iris Calder")
    assert cite(mine, "Kyoto", owner, "Iris Calder") == "You wrote on 1 May 2026: “Off to Kyoto!”"
    assert cite(mine, "Kyoto", friend, "Iris Calder").startswith("Iris wrote on 1 May 2026")
    theirs = stored_memory("See you at 7", kind=Kind.CHAT, author="Tomás Ferreira", is_owner=False)
    assert cite(theirs, "when", owner, "Iris Calder").startswith("Tomás Ferreira wrote on 1 May")
    undated = stored_memory("Notes on octopus dens.", timestamp=None)
    assert cite(undated, "dens", owner, "Iris Calder") == "Your note says: “Notes on octopus dens.”"
    # an owner named by one word, or not at all, is still cited without failing
    assert cite(mine, "Kyoto", friend, "Iris").startswith("Iris wrote on")
    assert cite(note, "starter", friend, " ").startswith("The owner's note of 1 May 2026 says")
    assert cite(mine, "Kyoto", friend, "").startswith("The owner wrote on 1 May 2026")
