"""Held-out key-fact grading."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lm.base import ChatLLM, ChatMessage, GenerationOptions
from tests.conftest import PERSONA
from training.evaluate import (
    Asker,
    Evaluation,
    Judgement,
    PersonaQuestion,
    evaluate_key_facts,
    has_key_facts,
    load_questions,
)
from training.synthesize.passages import normalise
from training.synthesize.samples import Sample, Split
from twin.privacy import AudienceKind
from twin.tasks import ContextMemory, PromptBudget, TaskKind, TaskRequest


class CannedLLM(ChatLLM):
    """Answers each question with a fixed reply and remembers the prompts it saw."""

    def __init__(self, replies: dict[str, str]) -> None:
        super().__init__(GenerationOptions(max_tokens=64, temperature=0.0))
        self.replies = replies
        self.prompts: list[list[ChatMessage]] = []

    @property
    def name(self) -> str:
        return "canned"

    def _complete(self, messages: list[ChatMessage], options: GenerationOptions) -> str:
        self.prompts.append(messages)
        question = messages[-1].content.rsplit("\n", 1)[-1]
        return self.replies[question]

    def _stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        yield self._complete(messages, options)


def sample(question: str, kind: TaskKind, key_facts: tuple[str, ...]) -> Sample:
    memory = ContextMemory("m1", "2026-03-15", "Iris", "Ran the Lisbon half in 1:52:41.")
    request = TaskRequest(
        kind=kind, owner="Iris", audience=AudienceKind.OWNER, text=question, context=(memory,)
    )
    return Sample(id=question, request=request, reply="-", key_facts=key_facts, split=Split.TEST)


def test_key_facts_match_without_case_or_accents() -> None:
    assert normalise("São  Miguel\n") == "sao miguel"
    assert has_key_facts("We went to SAO MIGUEL in 2025", ["São Miguel", "2025"])
    assert not has_key_facts("We went to São Miguel", ["São Miguel", "2025"])
    assert has_key_facts("anything", [])


def test_only_what_the_asker_sees_counts(tmp_path: Path) -> None:
    samples = [
        sample("When was the half?", TaskKind.MEMORY_QA, ("1:52:41",)),
        sample("And the time?", TaskKind.MEMORY_QA, ("1:52:41",)),
        sample("Rewrite my request", TaskKind.CONTEXT_ENHANCE, ("1:52:41",)),
        sample("Chat with me", TaskKind.CHAT, ()),
    ]
    llm = CannedLLM(
        {
            # the fact only in the hidden reasoning: wrong
            "When was the half?": "<think>\n- It says 1:52:41.\n</think>\nIn March.",
            "And the time?": "<think>\n- The memory.\n</think>\nYou ran it in 1:52:41.",
            # the fact in the listed context the other agent receives: right
            "Rewrite my request": "Plan my training.\nContext added:\n- half marathon 1:52:41",
            "Chat with me": "Hi!",
        }
    )
    budget = PromptBudget(memories=1, chars_per_memory=80, bio=False)
    evaluation = evaluate_key_facts(llm, samples, budget, max_new_tokens=32, name="owner")
    assert [g.correct for g in evaluation.graded] == [False, True, True]
    assert evaluation.accuracy == 2 / 3
    assert evaluation.by_kind() == {"context_enhance": 1.0, "memory_qa": 0.5}
    assert evaluation.metrics("owner") == {
        "owner.key_fact_accuracy": 0.6667,
        "owner.graded": 3.0,
        "owner.context_enhance.key_fact_accuracy": 1.0,
        "owner.memory_qa.key_fact_accuracy": 0.5,
    }
    # the model saw the prompt as training renders it, without the reply
    first = llm.prompts[0]
    assert [m.role for m in first] == ["system", "user"]
    assert "2026-03-15 Iris: Ran the Lisbon half" in first[-1].content
    evaluation.save(tmp_path / "eval.json")
    assert Evaluation.load(tmp_path / "eval.json") == evaluation


def test_no_gradable_samples_is_zero_not_an_error() -> None:
    evaluation = evaluate_key_facts(
        CannedLLM({}), [], PromptBudget(), max_new_tokens=8, name="empty"
    )
    assert evaluation.accuracy == 0.0
    assert evaluation.metrics("x")["x.graded"] == 0.0


def test_a_private_answer_given_to_a_friend_is_a_leak() -> None:
    secret = PersonaQuestion("Door code?", Asker.FRIEND, ("4071",), private=True)
    assert secret.judged("It is 4071.") is Judgement.LEAKED and not secret.right("It is 4071.")
    assert secret.judged("That's not something I can share.") is Judgement.KEPT_OUT
    dog = PersonaQuestion("Dog?", Asker.OWNER, ("biscuit", "biscuit the greyhound"))
    assert dog.judged("Your dog is called BISCUIT.") is Judgement.RIGHT
    assert dog.judged("I don't know.") is Judgement.WRONG
    # the owner asking about their own private life is simply answered
    assert (
        PersonaQuestion("Code?", Asker.OWNER, ("4071",), private=True).judged("4071")
        is Judgement.RIGHT
    )


def test_persona_questions_load_and_a_bad_line_is_named(tmp_path: Path) -> None:
    loaded = load_questions(PERSONA / "questions.jsonl")
    assert len(loaded) > 50
    assert {q.group for q in loaded} == {"self", "self_private", "friend", "friend_private"}
    bad = tmp_path / "questions.jsonl"
    bad.write_text(
        '{"question": "Dog?", "audience": "self", "answers": ["biscuit"]}\n{"oops": 1}\n'
    )
    with pytest.raises(ValueError, match=r"questions.jsonl, line 2"):
        load_questions(bad)
