"""Each filter removes what it should, and the report counts it."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest

from lm import OpenAICompatibleLLM
from memory.models import Memory
from memory.store import MemoryStore
from tests.llm_servers import free_port
from tests.lm.scripted_server import ScriptedServer, chat_reply, hang_up
from tests.training.synthesize.conftest import SECRET, ScriptedLLM
from training.synthesize.filters import (
    FilterLimits,
    apply_filters,
    dedupe,
    grounding,
    judge_threshold,
    length_and_format,
)
from training.synthesize.samples import Sample, Split
from training.synthesize.with_llm import SynthesisError
from twin.privacy import Audience, AudienceKind
from twin.tasks import (
    ContextMemory,
    CoTStrategy,
    PromptBudget,
    TaskKind,
    TaskRequest,
    Verdict,
    render_reply,
)

BUDGET = PromptBudget(memories=3, chars_per_memory=160, bio=False)


def by_text(store: MemoryStore, phrase: str) -> Memory:
    return next(m for m in store.iter_memories() if phrase in m.text)


def sample(
    question: str,
    reply: str,
    *,
    kind: TaskKind = TaskKind.MEMORY_QA,
    support: tuple[Memory, ...] = (),
    key_facts: tuple[str, ...] = (),
    split: Split = Split.TRAIN,
    audience: AudienceKind = AudienceKind.OWNER,
    context: tuple[Memory, ...] = (),
    name: str = "",
) -> Sample:
    request = TaskRequest(
        kind=kind,
        owner="Nora Lind",
        audience=audience,
        text=question,
        reply="Try the fish soup." if kind == TaskKind.CONTEXT_CRITIC else None,
        context=tuple(ContextMemory.of(m) for m in context or support),
    )
    return Sample(
        id=name or question,
        request=request,
        reply=reply,
        support=tuple(m.id for m in support),
        key_facts=key_facts,
        split=split,
    )


def fixed_vectors(table: dict[str, list[float]]):
    def embed(texts):
        return np.array([np.array(table[t]) / np.linalg.norm(table[t]) for t in texts])

    return embed


def test_dedupe_drops_repeats_and_near_repeats_and_keeps_training_ones() -> None:
    samples = [
        sample("When did I move to Bergen?", "In May 2022.", split=Split.TEST, name="held-out"),
        sample("When did I move to Bergen?", "In May 2022.", name="trained"),
        sample("when did I MOVE to Bergen ??", "May 2022.", name="same words"),
        sample("When did I relocate to Bergen?", "May 2022.", name="near"),
        sample("Where do I work?", "At the station.", name="other"),
        sample(
            "Where do I work?", "Verdict: fits\nOk.", kind=TaskKind.CONTEXT_CRITIC, name="critic"
        ),
    ]
    embed = fixed_vectors(
        {
            "When did I move to Bergen?": [1, 0, 0],
            "When did I relocate to Bergen?": [1, 0.05, 0],
            "Where do I work?": [0, 1, 0],
            "Where do I work?\nTry the fish soup.": [0, 1, 0],
        }
    )
    out = dedupe(samples, embed)
    assert [s.id for s in out.kept] == ["trained", "other", "critic"]
    assert out.removed == 3


def test_dedupe_with_the_real_embedder(small_store: MemoryStore) -> None:
    samples = [
        sample("What is my favourite dish?", "Soup."),
        sample("What's my favourite dish?", "Soup."),
        sample("Where do I work?", "At the station."),
    ]
    out = dedupe(samples, small_store.embedder.embed)
    assert [s.request.text for s in out.kept] == ["What is my favourite dish?", "Where do I work?"]


def test_length_and_format_drops_what_does_not_parse_back_or_does_not_fit() -> None:
    strong = CoTStrategy.STRONG
    good = render_reply(TaskKind.MEMORY_QA, "In May 2022.", strong, ("Memory says May 2022.",))
    critic = render_reply(
        TaskKind.CONTEXT_CRITIC, "Fine.", strong, ("Checked.",), verdict=Verdict.FITS
    )
    samples = [
        sample("When did I move?", good, key_facts=("May 2022",), name="good"),
        sample("Did it fit?", critic, kind=TaskKind.CONTEXT_CRITIC, name="critic"),
        sample("When did I move?", "", name="empty reply"),
        sample("   ", good, name="empty question"),
        sample("When did I move?", good + " " + "x" * 900, name="too long"),
        sample(
            "Did it fit?",
            "<think>\n- Checked.\n</think>\nFine.",
            kind=TaskKind.CONTEXT_CRITIC,
            name="critic without a verdict",
        ),
        sample("When?", "Thinking. So May.\nAnswer: May 2022.", name="another strategy's format"),
        sample("When?", "<think>\n- May 2022.\n</think>\n", name="reasoning, no answer"),
        sample("When?", good, key_facts=("Bergen",), name="key fact not shown"),
    ]
    out = length_and_format(samples, BUDGET, strong, FilterLimits(max_reply_chars=300))
    assert [s.id for s in out.kept] == ["good", "critic"]
    assert out.removed == 7


def test_grounding_needs_visible_support_that_holds_every_key_fact(
    small_store: MemoryStore,
) -> None:
    moved = by_text(small_store, "Moved from Tromsø")
    secret = by_text(small_store, SECRET)
    chat = by_text(small_store, "Every Monday at 19:00")
    friend = AudienceKind.FRIEND
    samples = [
        # accents, case and Markdown do not matter; a memory's date counts as part of it
        sample("Where from?", "TROMSO.", support=(moved,), key_facts=("TROMSO",), name="accents"),
        sample(
            "When?",
            "On it.",
            support=(chat,),
            key_facts=(chat.timestamp.date().isoformat(),),
            name="dated",
        ),
        sample("Where?", "Oslo.", support=(moved,), key_facts=("Oslo",), name="not in memory"),
        sample("When?", "Soon.", key_facts=("Soon",), name="no support"),
        sample(
            "Who?",
            "Ola.",
            support=(chat,),
            key_facts=("Monday",),
            audience=friend,
            context=(chat, secret),
            name="private context",
        ),
        sample(
            "Where?",
            "Stavanger.",
            support=(secret,),
            key_facts=("Stavanger",),
            audience=friend,
            name="private support",
        ),
    ]
    kept = grounding(samples, small_store, Audience.friend())
    assert [s.id for s in kept.kept] == ["accents", "dated"]
    # the owner may see the secret: only the ungrounded ones go
    owner_kept = grounding(samples, small_store, Audience.owner())
    assert [s.id for s in owner_kept.kept] == [
        "accents",
        "dated",
        "private context",
        "private support",
    ]
    assert owner_kept.removed == 2


def judge_by_reply(prompt: str) -> str:
    if "unreadable" in prompt:
        return "I refuse to answer in JSON."
    return json.dumps({"score": 2 if "INVENTED" in prompt else 5, "reason": "checked"})


def test_the_judge_keeps_what_it_scores_high_enough(caplog: pytest.LogCaptureFixture) -> None:
    judge = ScriptedLLM(judge_by_reply)
    samples = [
        sample("When?", "In May 2022.", name="fine"),
        sample("When?", "An INVENTED date.", name="made up"),
        sample("When?", "unreadable", name="unjudged"),
    ]
    with caplog.at_level(logging.WARNING):
        out = judge_threshold(samples, judge, BUDGET, min_score=4)
    assert [s.id for s in out.kept] == ["fine"] and out.removed == 2
    assert "could not score" in caplog.text
    assert "[reply to score]\nIn May 2022." in judge.prompts[0]


def test_a_judge_that_cannot_be_reached_stops_the_run_at_the_first_sample() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    judge = OpenAICompatibleLLM(url, "judge", max_retries=3, backoff=1.0)
    samples = [sample("When?", f"In May 202{i}.", name=f"s{i}") for i in range(5)]
    started = time.monotonic()
    with pytest.raises(SynthesisError, match=rf"judge model is unavailable.*0 of 5.*{url}"):
        judge_threshold(samples, judge, BUDGET)
    assert time.monotonic() - started < 1.0


def test_a_judge_that_goes_away_mid_run_stops_it_there(scripted_server: ScriptedServer) -> None:
    score = chat_reply(json.dumps({"score": 5, "reason": "fine"}))
    scripted_server.script(score, score, hang_up(), score)
    judge = OpenAICompatibleLLM(scripted_server.url, "judge", max_retries=3, backoff=1.0)
    samples = [sample("When?", f"In May 202{i}.", name=f"s{i}") for i in range(5)]
    with pytest.raises(SynthesisError, match=r"it scored 2 of 5 samples before.*unreachable"):
        judge_threshold(samples, judge, BUDGET)
    assert len(scripted_server.requests) == 3  # no retries, and no sample after it


def test_apply_filters_reports_each_filter_by_name(small_store: MemoryStore) -> None:
    moved = by_text(small_store, "Moved from Tromsø")
    weak = CoTStrategy.WEAK
    samples = [
        sample("When did I move?", "In May 2022.", support=(moved,), key_facts=("May 2022",)),
        sample("When did I move?", "In May 2022.", support=(moved,), key_facts=("May 2022",)),
        sample("Where from?", "", support=(moved,)),
        sample("Where to?", "Oslo.", support=(moved,), key_facts=("Oslo",)),
        sample("Anything invented?", "An INVENTED thing."),
    ]
    kept, removed = apply_filters(
        samples,
        store=small_store,
        audience=Audience.owner(),
        budget=BUDGET,
        strategy=weak,
        embed=small_store.embedder.embed,
        judge=ScriptedLLM(judge_by_reply),
    )
    assert [s.request.text for s in kept] == ["When did I move?"]
    assert removed == {"dedupe": 1, "length_and_format": 1, "grounding": 1, "judge": 1}
