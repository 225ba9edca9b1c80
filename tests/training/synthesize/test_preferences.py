"""DPO pairs: never identical, about a fifth of the training samples, like swapped with like."""

from __future__ import annotations

import itertools
import json
import re

from tests.training.synthesize.conftest import ScriptedLLM
from training.synthesize.extract import Lexicon
from training.synthesize.preferences import judge_pairs, model_pairs, perturbed_pairs
from training.synthesize.samples import Sample, Split
from twin.privacy import AudienceKind
from twin.tasks import CoTStrategy, PromptBudget, TaskKind, TaskRequest, render_reply

LEXICON = Lexicon(people=frozenset(), proper=frozenset({"Lisbon", "Bergen", "Oslo"}))
DATES = ["3 March 2025", "14 May 2026", "9 August 2026", "21 June 2024", "1 April 2023"]
PLACES = ["Lisbon", "Bergen", "Oslo"]


def qa(i: int, fact: str, *, split: Split = Split.TRAIN) -> Sample:
    request = TaskRequest(TaskKind.MEMORY_QA, "Nora", AudienceKind.OWNER, f"Question {i}?")
    reply = render_reply(
        TaskKind.MEMORY_QA, f"It was {fact}.", CoTStrategy.STRONG, (f"It says: {fact}.",)
    )
    return Sample(f"s{i}", request, reply, support=("m",), key_facts=(fact,), split=split)


def samples() -> list[Sample]:
    chat = Sample("chat", TaskRequest(TaskKind.CHAT, "Nora", AudienceKind.FRIEND, "hi"), "hello")
    out = [qa(i, d) for i, d in enumerate(DATES * 2)]
    out += [qa(20 + i, p) for i, p in enumerate(PLACES)]
    out += [qa(40, "the squeaky crab"), chat, qa(50, DATES[0], split=Split.TEST)]
    return out


def test_perturbed_pairs_swap_a_fact_for_another_of_its_kind() -> None:
    data = samples()
    pairs = perturbed_pairs(data, LEXICON, share=0.2, seed=1)
    train = [s for s in data if s.split == Split.TRAIN]
    assert len(pairs) == round(0.2 * len(train))
    by_request = {s.request: s for s in data}
    for pair in pairs:
        chosen = by_request[pair.request]
        assert chosen.split == Split.TRAIN and pair.chosen == chosen.reply
        assert pair.rejected != pair.chosen and pair.reason == "perturbed"
        fact = chosen.key_facts[0]
        assert fact not in pair.rejected
        pool = DATES if fact in DATES else PLACES
        swapped = next(v for v in pool if v in pair.rejected)
        # the wrong value is everywhere the right one was, reasoning included
        assert pair.rejected.count(swapped) == pair.chosen.count(fact) == 2


def test_perturbed_pairs_only_use_values_from_the_same_dataset() -> None:
    pairs = perturbed_pairs(samples(), LEXICON, share=1.0, seed=2)
    values = set(DATES) | set(PLACES) | {"the squeaky crab"}
    for pair in pairs:
        found = re.search(r"It was (.+)\.", pair.rejected.split("</think>")[-1])
        assert found and found.group(1) in values
    # the lone free-text fact has nothing of its kind to be swapped with
    assert not [p for p in pairs if "squeaky crab" in p.chosen]


def test_model_pairs_keep_the_sft_models_wrong_answers() -> None:
    data = samples()

    def generate(request: TaskRequest) -> str:
        number = int(request.text.split()[1].rstrip("?"))
        return "It was 14 May 2026." if number % 2 else "I don't know."

    pairs = model_pairs(data, generate, share=0.2, seed=0)
    assert pairs and len(pairs) <= round(0.2 * 14)
    for pair in pairs:
        assert pair.reason == "sft-wrong" and pair.rejected != pair.chosen
        sample = next(s for s in data if s.request == pair.request)
        assert sample.key_facts[0] not in pair.rejected


def test_judge_pairs_reject_the_lower_ranked_sample() -> None:
    answers = itertools.cycle(["It was 14 May 2026.", "No idea, sorry."])
    judge = ScriptedLLM(
        lambda prompt: json.dumps(
            {"score": 1 if "No idea" in prompt.split("[reply to score]")[-1] else 4}
        )
    )
    pairs = judge_pairs(
        samples(), lambda request: next(answers), judge, PromptBudget(), share=0.2, seed=0
    )
    assert len(pairs) == round(0.2 * 14)
    assert all(p.rejected == "No idea, sorry." and p.reason == "judge-lower" for p in pairs)
