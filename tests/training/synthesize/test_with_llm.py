"""The LLM synthesizer against a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import random

import pytest

from lm import OpenAICompatibleLLM
from memory.store import MemoryStore
from tests.lm.scripted_server import ScriptedServer, chat_reply, hang_up
from tests.training.synthesize.conftest import OWNER, SECRET
from training.synthesize import SynthesisError, SynthesisLimits, synthesize
from training.synthesize.material import Material
from training.synthesize.samples import Split
from training.synthesize.with_llm import LLMSynthesizer
from twin.config import Pronouns
from twin.privacy import Audience
from twin.tasks import CoTStrategy, PromptBudget, TaskKind, Verdict, parse_reply


def ids_by_text(store: MemoryStore) -> dict[str, str]:
    return {m.text: m.id for m in store.iter_memories()}


def batch_json(store: MemoryStore) -> dict:
    """What a capable model answers for the small store: one item per kind, plus an item
    that cites only a memory that does not exist."""
    ids = {text.split("\n")[0]: mid for text, mid in ids_by_text(store).items()}
    moved = ids["Work › Lab"]
    food = ids["Food"]
    return {
        "qa": [
            {
                "question": "When did I move to Bergen?",
                "rephrased": "Which month did I relocate to Bergen?",
                "answer": "You moved from Tromsø to Bergen in May 2022.",
                "key_facts": ["May 2022"],
                "support": [moved, "m_invented"],
            },
            {
                "question": "Where was I born?",
                "answer": "In Narvik.",
                "key_facts": ["Narvik"],
                "support": ["m_invented"],
            },
        ],
        "enhance": [
            {
                "request": "Suggest a restaurant for tonight.",
                "target": "a restaurant assistant",
                "enhanced": "Suggest a restaurant for tonight. I have been vegetarian since 2019.",
                "added": ["I have been vegetarian since 2019."],
                "support": [food],
            }
        ],
        "critic": [
            {
                "request": "Plan my dinner.",
                "agent_reply": "Have the liquorice stew.",
                "verdict": "does not fit",
                "feedback": "You can't stand liquorice; pick the mushroom soup.",
                "checked": ["Can't stand: liquorice."],
                "key_facts": ["liquorice"],
                "support": [food],
            }
        ],
    }


def llm(server: ScriptedServer) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(server.url, "synth", max_retries=0, backoff=0.0)


def synthesizer(store: MemoryStore, server: ScriptedServer, audience: Audience) -> LLMSynthesizer:
    material = Material.read(store, audience, OWNER)
    return LLMSynthesizer(
        material, llm(server), random.Random(0), batch_memories=20, test_share=1.0
    )


def test_valid_answers_become_drafts_and_invented_ids_are_dropped(
    small_store: MemoryStore, scripted_server: ScriptedServer
) -> None:
    scripted_server.script(chat_reply(json.dumps(batch_json(small_store))))
    drafts = synthesizer(small_store, scripted_server, Audience.owner()).drafts()
    by_kind = {d.kind: [x for x in drafts if x.kind == d.kind] for d in drafts}
    qa = by_kind[TaskKind.MEMORY_QA]
    # the item citing only an invented memory is gone; the other keeps its real support
    assert [d.text for d in qa] == [
        "When did I move to Bergen?",
        "Which month did I relocate to Bergen?",
    ]
    assert all(len(d.support) == 1 and d.support[0].startswith("m_") for d in qa)
    assert [d.split for d in qa] == [Split.TRAIN, Split.TEST]
    assert {d.template for d in qa} == {"llm", "llm.rephrased"}
    (critic,) = by_kind[TaskKind.CONTEXT_CRITIC]
    assert critic.verdict == Verdict.DOES_NOT_FIT and critic.reply == "Have the liquorice stew."
    assert by_kind[TaskKind.CONTEXT_ENHANCE][0].listed == ("I have been vegetarian since 2019.",)
    sent = scripted_server.requests[0].payload
    assert "response_format" in sent and "Tromsø" in json.dumps(sent, ensure_ascii=False)


def test_broken_json_is_repaired(small_store: MemoryStore, scripted_server: ScriptedServer) -> None:
    text = json.dumps(batch_json(small_store), indent=1)
    broken = (
        "Here you go:\n```json\n" + text.replace("]\n}", "],\n}").replace('"qa"', "qa") + "\n```"
    )
    scripted_server.script(chat_reply(broken))
    drafts = synthesizer(small_store, scripted_server, Audience.owner()).drafts()
    assert len(drafts) == 4


def test_a_model_that_never_answers_validly_is_a_clear_error(
    small_store: MemoryStore, scripted_server: ScriptedServer
) -> None:
    scripted_server.script(chat_reply("Sorry, I can only write prose about memories."))
    with pytest.raises(SynthesisError, match="no valid training data for memories m_"):
        synthesizer(small_store, scripted_server, Audience.owner()).drafts()


def test_answers_with_nothing_usable_are_a_clear_error(
    small_store: MemoryStore, scripted_server: ScriptedServer
) -> None:
    invented = {
        "question": "Where was I born?",
        "answer": "In Narvik.",
        "key_facts": ["Narvik"],
        "support": ["m_invented"],
    }
    unsupported = {**invented, "support": [next(iter(ids_by_text(small_store).values()))]}
    unsupported["answer"] = "Somewhere up north."  # its key fact is not in its answer
    scripted_server.script(chat_reply(json.dumps({"qa": [invented, unsupported]})))
    with pytest.raises(SynthesisError, match=r"no usable training data: none of the 2 item"):
        synthesizer(small_store, scripted_server, Audience.owner()).drafts()


def test_a_synthesizer_that_goes_away_stops_the_run_at_once(
    small_store: MemoryStore, scripted_server: ScriptedServer
) -> None:
    scripted_server.script(hang_up())
    material = Material.read(small_store, Audience.owner(), OWNER)
    slow_retries = OpenAICompatibleLLM(scripted_server.url, "synth", max_retries=3, backoff=1.0)
    llm_synthesizer = LLMSynthesizer(material, slow_retries, random.Random(0), batch_memories=2)
    unavailable = rf"synthesizer model is unavailable.*{scripted_server.url}"
    with pytest.raises(SynthesisError, match=unavailable):
        llm_synthesizer.drafts()
    assert len(scripted_server.requests) == 1  # the first batch; no retries, no later batches


def test_llm_drafts_go_through_the_same_assembly_and_filters(
    small_store: MemoryStore, scripted_server: ScriptedServer
) -> None:
    scripted_server.script(chat_reply(json.dumps(batch_json(small_store))))
    data = synthesize(
        small_store,
        audience=Audience.owner(),
        owner=OWNER,
        strategy=CoTStrategy.STRONG,
        budget=PromptBudget(memories=3, bio=False),
        synthesizer=llm(scripted_server),
        limits=SynthesisLimits(llm_batch_memories=20, test_share=1.0),
    )
    from_llm = [s for s in data.samples if s.origin == "llm"]
    assert {s.kind for s in from_llm} == {
        TaskKind.MEMORY_QA,
        TaskKind.CONTEXT_ENHANCE,
        TaskKind.CONTEXT_CRITIC,
    }
    for sample in from_llm:
        assert parse_reply(sample.kind, sample.reply).reasoning
    # chat exchanges and identity come from memory either way
    assert any(s.origin == "offline" and s.kind == TaskKind.IDENTITY for s in data.samples)
    assert set(data.removed) == {"dedupe", "length_and_format", "grounding"}


def test_a_friend_s_synthesis_prompt_never_shows_a_private_memory(
    small_store: MemoryStore, scripted_server: ScriptedServer
) -> None:
    scripted_server.script(chat_reply(json.dumps(batch_json(small_store))))
    drafts = synthesizer(small_store, scripted_server, Audience.friend()).drafts()
    prompt = json.dumps(scripted_server.requests[0].payload["messages"], ensure_ascii=False)
    assert SECRET not in prompt and "Leave enhance and critic empty" in prompt
    # the notes cited are visible to friends; enhance and critic are the owner's tasks
    assert {d.kind for d in drafts} == {TaskKind.MEMORY_QA}


def test_a_friend_hears_about_the_owner_by_name_and_pronoun(
    small_store: MemoryStore, scripted_server: ScriptedServer
) -> None:
    ids = {text.split("\n")[0]: mid for text, mid in ids_by_text(small_store).items()}
    answer = {
        "question": "When did you move to Bergen?",
        "answer": "I moved from Tromsø to Bergen in May 2022, and I love my lab.",
        "key_facts": ["May 2022"],
        "support": [ids["Work › Lab"]],
    }
    scripted_server.script(chat_reply(json.dumps({"qa": [answer]})))
    material = Material.read(small_store, Audience.friend(), OWNER, pronouns=Pronouns.SHE)
    synthesizer = LLMSynthesizer(
        material, llm(scripted_server), random.Random(0), batch_memories=20, test_share=0.0
    )
    (draft,) = synthesizer.drafts()
    # the model wrote the owner's "I": the friend hears about Nora, then "she"
    assert draft.answer == "Nora moved from Tromsø to Bergen in May 2022, and she loves her lab."
    assert draft.steps == (
        "Nora's note of 30 April 2025 is about this.",
        "It gives the answer: May 2022.",
    )
    prompt = json.dumps(scripted_server.requests[0].payload["messages"], ensure_ascii=False)
    assert "'When did Nora…?'" in prompt and "then 'she'" in prompt
    # memories are dated as people write dates, which the answers then copy
    assert "30 April 2025" in prompt and "2025-04-30" not in prompt
