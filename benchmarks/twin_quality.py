"""Twin quality: does the answer contain the key fact? Four ways of answering, two question sets.

    python benchmarks/twin_quality.py HOME [--run RUN_ID] [--questions FILE] [--plot PNG]

HOME is a twin's home after `twin train` (the latest run, or --run). Ways of answering:
  (a) twin+retrieval: the trained twin as served (`Twin.answer`: retrieval, the model, the guard);
  (b) twin alone: the same model, prompted with no retrieved memories (parametric memory only);
  (c) retrieval alone: the text of the top retrieved memory;
  (d) untrained base: the run's base before any training (the tiny base: the same architecture
      and tokenizer, freshly initialised), prompted as in (a).
Question sets: the run's held-out memory-QA samples (questions synthesized unlike any training
question), and FILE (default: examples/persona/questions.jsonl), hand-written questions with
their accepted answers; a private question asked by a friend counts as right when the answer
stays out. The owner's model answers the owner's questions, the shared model everyone else's.
Ends by printing one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory.embed import SentenceTransformerEmbedder
from memory.retrieve import Retriever
from memory.store import MemoryStore
from training.evaluate import has_key_facts, load_questions, normalize
from training.pipeline import Stage, TrainingRun, resolve_base
from training.synthesize.samples import Dataset, Split
from training.tiny import create_model, tiny_size
from twin.config import load_settings
from twin.llm.base import LLM, GenerationOptions
from twin.llm.hf_transformers import TransformersLLM
from twin.privacy import Audience
from twin.registry import ModelRegistry
from twin.service import Twin, TwinModels, is_relevant, open_twin
from twin.tasks import (
    ContextMemory,
    PromptBudget,
    TaskKind,
    TaskRequest,
    parse_reply,
    render_messages,
)

WAYS = ("twin+retrieval", "twin alone", "retrieval alone", "untrained base")


@dataclass(frozen=True)
class Question:
    text: str
    audience: Audience
    answers: tuple[str, ...]
    # every key fact must be said (held-out samples) or any one answer (hand-written)
    all_needed: bool
    # a friend asking for something private: right when it is not said
    withhold: bool = False
    group: str = ""

    def right(self, reply: str) -> bool:
        if self.all_needed:
            said = has_key_facts(reply, self.answers)
        else:
            said = any(normalize(a) in normalize(reply) for a in self.answers)
        return not said if self.withhold else said


def held_out_questions(run: TrainingRun) -> list[Question]:
    """The run's held-out memory-QA samples that have key facts, owner's and shared."""
    out = []
    for side, audience in (("owner", Audience.owner()), ("shared", Audience.friend())):
        data = Dataset.load(run.stage_dir(Stage.SYNTHESIZE) / side)
        for sample in data.split(Split.TEST):
            if sample.kind == TaskKind.MEMORY_QA and sample.key_facts:
                out.append(
                    Question(sample.request.text, audience, sample.key_facts, True, group=side)
                )
    return out


def persona_questions(path: Path) -> list[Question]:
    return [
        Question(
            q.question,
            Audience.friend() if q.audience == "friend" else Audience.owner(),
            q.answers,
            False,
            q.withhold,
            q.group,
        )
        for q in load_questions(path)
    ]


class Prompter:
    """Prompts a model as serving does, with or without the retrieved memories."""

    def __init__(self, twin: Twin, budget: PromptBudget, max_tokens: int) -> None:
        self.twin = twin
        self.budget = budget
        self.options = GenerationOptions(max_tokens=max_tokens, temperature=0.0)

    def context(self, q: Question) -> tuple[ContextMemory, ...]:
        hits = self.twin.retriever.search(
            q.text, k=self.budget.memories, flt=q.audience.memory_filter()
        )
        return tuple(ContextMemory.of(h.memory) for h in hits if is_relevant(h))

    def ask(self, llm: LLM, q: Question, with_context: bool) -> str:
        request = TaskRequest(
            kind=TaskKind.MEMORY_QA,
            owner=self.twin.owner,
            audience=q.audience.kind,
            text=q.text,
            context=self.context(q) if with_context else (),
            bio=self.twin.bios.bio_text(q.audience) if self.twin.bios and self.budget.bio else "",
        )
        raw = llm.complete(render_messages(request, self.budget), self.options)
        return parse_reply(TaskKind.MEMORY_QA, raw).answer


def untrained_base(run: TrainingRun, scratch: Path) -> Path:
    """The run's starting point: its pretrained base, or the tiny base freshly initialised."""
    if not run.options.tiny:
        return resolve_base(run.options.base)
    size = tiny_size(run.options.tiny_size)
    create_model(run.stage_dir(Stage.TOKENIZER), size, scratch, seed=run.options.seed)
    return scratch


def top_memory(retriever: Retriever, q: Question) -> str:
    hits = retriever.search(q.text, k=1, flt=q.audience.memory_filter())
    return hits[0].memory.text if hits else ""


def score(questions: list[Question], answer: Callable[[Question], str]) -> dict[str, float]:
    """Share right per group, and over every question that should be answered ("answerable")."""
    marks = [(q, q.right(answer(q))) for q in questions]
    groups: dict[str, list[bool]] = {}
    for q, ok in marks:
        groups.setdefault(q.group, []).append(ok)
    figures = {g: round(sum(v) / len(v), 3) for g, v in sorted(groups.items())}
    answerable = [ok for q, ok in marks if not q.withhold]
    figures["answerable"] = round(sum(answerable) / len(answerable), 3) if answerable else 0.0
    return figures


def plot(figures: dict[str, dict[str, dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(figures)
    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 4), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        groups = list(next(iter(figures[name].values())))
        width = 0.8 / len(WAYS)
        for i, way in enumerate(WAYS):
            values = [figures[name][way][g] for g in groups]
            ax.bar([x + i * width for x in range(len(groups))], values, width, label=way)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], groups)
        ax.set_ylim(0, 1)
        ax.set_title(name)
        ax.set_ylabel("key fact in the answer")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path)
    parser.add_argument("--run", help="a run id (default: the latest)")
    default_questions = Path(__file__).resolve().parents[1] / "examples/persona/questions.jsonl"
    parser.add_argument("--questions", type=Path, default=default_questions)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()

    settings = load_settings(args.home)
    runs = sorted(p.parent.name for p in settings.paths.runs_dir.glob("*/run.json"))
    if not args.run and not runs:
        raise SystemExit(f"{args.home} has no training run: run `twin train` first")
    run_id = args.run or runs[-1]
    with MemoryStore.open(settings.paths.memory_dir, SentenceTransformerEmbedder()) as store:
        run = TrainingRun.resume(settings, store, run_id)
        twin = open_twin(settings, store)
        models: TwinModels = twin.models
        registry = ModelRegistry(settings.paths.models_dir)
        manifest = registry.current()
        if manifest is None:
            raise SystemExit(f"no model is serving in {args.home}: run `twin train` first")
        budget = PromptBudget(
            manifest.context_memories, manifest.context_chars, manifest.context_bio
        )
        prompter = Prompter(twin, budget, manifest.max_new_tokens)
        sets = {"held-out (synthesized)": held_out_questions(run)}
        if args.questions.is_file():
            sets["persona questions (hand-written)"] = persona_questions(args.questions)

        def served(q: Question) -> LLM:
            loaded = models.for_audience(q.audience.kind)
            assert loaded is not None
            return loaded.llm

        with tempfile.TemporaryDirectory() as tmp:
            base = TransformersLLM(untrained_base(run, Path(tmp) / "base"))
            figures: dict[str, dict[str, dict[str, float]]] = {}
            for name, questions in sets.items():
                figures[name] = {
                    WAYS[0]: score(questions, lambda q: twin.answer(q.text, q.audience).text),
                    WAYS[1]: score(questions, lambda q: prompter.ask(served(q), q, False)),
                    WAYS[2]: score(questions, lambda q: top_memory(twin.retriever, q)),
                    WAYS[3]: score(questions, lambda q: prompter.ask(base, q, True)),
                }
                figures[name]["questions"] = {"count": float(len(questions))}
        models.close()
    if args.plot:
        plot({k: {w: v[w] for w in WAYS} for k, v in figures.items()}, args.plot)
    print(json.dumps({"run": run_id, "version": manifest.version, **figures}))


if __name__ == "__main__":
    main()
