"""Reading a model's reply back: the reasoning never reaches the asker, whatever shape it has."""

from __future__ import annotations

import pytest

from twin.tasks import TaskKind, Verdict, parse_reply, split_reasoning

SECRET = "Memory 2026-09-15: the biopsy results"


@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        # well formed
        (f"<think>{SECRET}</think>\nShe is fine.", "She is fine."),
        # the reasoning not at the start, as in the leaks the issue saw
        (f"Let me check. {SECRET} </think> She is fine.", "She is fine."),
        # two think blocks: everything up to the last close is reasoning
        (f"<think>a</think> draft <think>{SECRET}</think>She is fine.", "She is fine."),
        # upper case tags
        (f"<THINK>{SECRET}</THINK>She is fine.", "She is fine."),
        # opened and never closed: the model ran out while reasoning
        (f"She is fine. <think>{SECRET}", "She is fine."),
        # multi-step format: the steps, then the last "Answer:" line
        (f"Step 1: {SECRET}\nStep 2: nothing else\nAnswer: She is fine.", "She is fine."),
        # a stray closing or opening tag alone
        ("She is fine.</think>", ""),
        ("<think>She is fine.", ""),
        # no structure at all: all answer
        ("She is fine.", "She is fine."),
    ],
)
def test_reasoning_is_split_off_by_structure(raw: str, answer: str) -> None:
    reasoning, said = split_reasoning(raw)
    assert said == answer
    assert "think>" not in said.lower() and SECRET not in said
    if SECRET in raw:
        assert reasoning is not None and SECRET in reasoning


def test_a_critic_reply_keeps_its_verdict_and_loses_its_reasoning() -> None:
    raw = (
        f"<think>{SECRET}</think>\nVerdict: partly. The place is right, the day is not.\n"
        "Checked against:\n- she climbs on Tuesdays"
    )
    reply = parse_reply(TaskKind.CONTEXT_CRITIC, raw)
    assert reply.verdict == Verdict.PARTLY
    assert reply.checked == ("she climbs on Tuesdays",)
    assert SECRET not in reply.answer and reply.answer.startswith("The place is right")


def test_an_enhance_reply_lists_what_it_added_without_the_reasoning() -> None:
    raw = f"{SECRET}</think>Book a table for two.\nContext added:\n- she is vegetarian"
    reply = parse_reply(TaskKind.CONTEXT_ENHANCE, raw)
    assert reply.answer == "Book a table for two."
    assert reply.added == ("she is vegetarian",)
    assert reply.reasoning is not None and SECRET in reply.reasoning
