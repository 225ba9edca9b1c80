"""Twin quality: is the answer right? Five ways of answering, asked exactly as served.

    python benchmarks/twin_quality.py HOME [--run RUN_ID] [--questions FILE] [--plot PNG]
        [--ways a,a-sft,b,c,e] [--quant q8_0] [--threads 2] [--answers JSONL]

HOME is a twin's home after `twin train` (the latest run, or --run). Ways of answering:
  (a)     twin: the served models (SFT + DPO) through `Twin.answer` (retrieval, prompt, guard);
  (a-sft) SFT only: the run's SFT models, exported like the served ones, through `Twin.answer`;
  (b)     twin, no retrieval: the served models prompted with no memories (what they learnt);
  (c)     top memory: the top memory the asker may see, as the model is shown it (date, text);
  (e)     untuned base: the run's base before any training, exported like the served ones,
          through `Twin.answer` (the same retrieval and prompt, zero-shot).
Question sets: FILE (default examples/persona/questions.jsonl): hand-written questions with
their accepted answers, in groups self / friend / self_private / friend_private (a friend's
private question is right when no accepted answer is said); and the run's held-out samples,
synthesized apart from every training sample: memory QA (every key fact said), context enhance
(the rewritten request and its additions carry every key fact) and context critic (the verdict
matches). The owner's model answers the owner, the shared model everyone else.
--answers writes every question's answer per way, and whether it was judged right, to read
what the figures count. Ends by printing one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lm.base import GenerationOptions
from memory.embed import SentenceTransformerEmbedder
from memory.store import MemoryStore
from serving.answerers import TwinModels
from serving.service import Twin
from training.evaluate import has_key_facts, load_questions
from training.export import export_stack
from training.lora import ModelStack
from training.pipeline import TrainingRun
from training.pipeline.artifacts import RunFolder
from training.synthesize.samples import Sample, Split
from twin.config import Settings, load_settings
from twin.privacy import Audience, ModelSide
from twin.registry import Manifest, ModelFiles, ModelRegistry
from twin.tasks import ContextMemory, PromptBudget, TaskKind, TaskRequest, parse_reply

WAYS = {
    "a": "twin (SFT+DPO)",
    "a-sft": "SFT only",
    "b": "twin, no retrieval",
    "c": "top memory",
    "e": "untuned base",
}


@dataclass(frozen=True)
class Question:
    """One question, who asks it, and how an answer is judged."""

    text: str
    audience: Audience
    group: str
    judge: Callable[[str], bool]


def persona_questions(path: Path) -> list[Question]:
    """The hand-written questions: any accepted answer said is right; for a friend's private
    question, saying none is."""
    out = []
    for q in load_questions(path):
        out.append(Question(q.question, q.asker.audience, q.group, q.right))
    return out


def held_out_qa(folder: RunFolder) -> list[Question]:
    """The run's held-out memory-QA samples with key facts, for each model's audience."""
    out = []
    for side, audience in (
        (ModelSide.OWNER, Audience.owner()),
        (ModelSide.SHARED, Audience.friend()),
    ):
        for sample in folder.dataset(side).split(Split.TEST):
            if sample.kind == TaskKind.MEMORY_QA and sample.key_facts:
                facts = sample.key_facts
                out.append(
                    Question(
                        sample.request.text,
                        audience,
                        f"held-out QA {side}",
                        lambda reply, facts=facts: has_key_facts(reply, facts),
                    )
                )
    return out


def held_out_tasks(folder: RunFolder, kind: TaskKind) -> list[Sample]:
    """The owner's held-out enhance or critic samples (only the owner's model does these)."""
    return [s for s in folder.dataset(ModelSide.OWNER).split(Split.TEST) if s.kind == kind]


@dataclass(frozen=True)
class Answered:
    """One question's answer in one way, and its judgement."""

    way: str
    group: str
    question: str
    answer: str
    right: bool


def score(
    way: str, questions: list[Question], answer: Callable[[Question], str]
) -> tuple[dict[str, float], list[Answered]]:
    """The share right per group, and every answer as judged."""
    answered = []
    for q in questions:
        reply = answer(q)
        answered.append(Answered(way, q.group, q.text, reply, q.judge(reply)))
    groups: dict[str, list[bool]] = {}
    for a in answered:
        groups.setdefault(a.group, []).append(a.right)
    return {g: round(sum(v) / len(v), 3) for g, v in sorted(groups.items())}, answered


def enhance_answers(way: str, twin: Twin, samples: list[Sample]) -> list[Answered]:
    """Each held-out enhance request's rewrite, right when it carries every key fact."""
    answered = []
    for s in samples:
        if not s.key_facts:
            continue
        reply = twin.enhance(s.request.text, s.request.target)
        rewrite = "\n".join([reply.text, *reply.added])
        right = has_key_facts(rewrite, s.key_facts)
        answered.append(Answered(way, "held-out enhance", s.request.text, rewrite, right))
    return answered


def critic_answers(way: str, twin: Twin, samples: list[Sample]) -> list[Answered]:
    """Each held-out critic sample's verdict and reasons, right when the verdict is the one
    synthesized."""
    answered = []
    for s in samples:
        expected = parse_reply(TaskKind.CONTEXT_CRITIC, s.reply).verdict
        reply = twin.critique(s.request.text, s.request.reply or "")
        question = f"{s.request.text} / reply: {s.request.reply} (expected: {expected})"
        said = f"{reply.verdict}: {reply.text}"
        answered.append(Answered(way, "held-out critic", question, said, reply.verdict == expected))
    return answered


def share_right(answered: list[Answered]) -> float | None:
    """The share of `answered` judged right (None for none)."""
    return round(sum(a.right for a in answered) / len(answered), 3) if answered else None


@contextmanager
def served_as(
    settings: Settings, manifest: Manifest, ggufs: dict[ModelSide, Path], threads: int
) -> Iterator[TwinModels]:
    """The served version's settings (prompt budget, context) with other model files, in a
    registry of their own."""
    with tempfile.TemporaryDirectory(dir=settings.paths.root) as tmp:
        registry = ModelRegistry(Path(tmp))
        folder = registry.allocate()
        models = {}
        for side, path in ggufs.items():
            shutil.copy(path, folder / f"{side}.gguf")
            models[side] = ModelFiles(ggufs=[f"{side}.gguf"])
        registry.register(manifest.model_copy(update={"version": folder.name, "models": models}))
        registry.promote(folder.name)
        twin_models = TwinModels(registry, threads=threads)
        try:
            yield twin_models
        finally:
            twin_models.close()


def exported(stacks: dict[ModelSide, ModelStack], out: Path, quant: str) -> dict[ModelSide, Path]:
    """Each stack merged and written as a GGUF in `quant` under `out`."""
    return {
        side: export_stack(stack, {quant: out / f"{side}.{quant}.gguf"})[quant]
        for side, stack in stacks.items()
    }


class NoRetrieval:
    """The served models, prompted as serving does but with no memories."""

    def __init__(self, twin: Twin, manifest: Manifest) -> None:
        self.twin = twin
        self.budget = PromptBudget(
            manifest.context_memories, manifest.context_chars, manifest.context_bio
        )

    def __call__(self, q: Question) -> str:
        answerer = self.twin.models.choose(q.audience.kind).answerer
        assert answerer is not None, "the served model does not load"
        bios = self.twin.bios
        request = TaskRequest(
            kind=TaskKind.MEMORY_QA,
            owner=self.twin.owner,
            audience=q.audience.kind,
            text=q.text,
            bio=bios.bio_text(q.audience) if bios and self.budget.bio else "",
        )
        # capped as serving caps a memory answer, a little past the longest the model learned
        options = GenerationOptions(
            max_tokens=answerer.reply_cap(TaskKind.MEMORY_QA), temperature=0.0
        )
        raw = answerer.llm.complete(self.twin._fit(request, self.budget, answerer), options)
        return parse_reply(TaskKind.MEMORY_QA, raw).answer


class AsServed:
    """The twin's answers as served, counting those shown from memory instead of the model's
    (no model, or an answer memory does not hold)."""

    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self.asked = 0
        self.from_memory = 0

    def __call__(self, q: Question) -> str:
        reply = self.twin.answer(q.text, q.audience)
        self.asked += 1
        self.from_memory += reply.model == "retrieval"
        return reply.text


def top_memory(twin: Twin, q: Question) -> str:
    """The top memory the asker may see, as the model is shown it."""
    hits = twin.retriever.search(
        q.text, k=1, flt=q.audience.memory_filter(), asker=q.audience.asker
    )
    relevant = [h for h in hits if h.relevant]
    return ContextMemory.of(relevant[0].memory).line(400) if relevant else ""


def plot(table: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ways = list(table)
    groups = sorted({g for figures in table.values() for g in figures})
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(groups) * len(ways) / 3), 4.5))
    width = 0.8 / len(ways)
    for i, way in enumerate(ways):
        values = [table[way].get(g, 0.0) for g in groups]
        ax.bar([x + i * width for x in range(len(groups))], values, width, label=WAYS[way])
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], groups, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share right")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _run_in_notes(notes: str) -> str:
    """The run id that versions registered before `Manifest.run_id` wrote in their notes."""
    found = re.fullmatch(r"run (\S+)", notes.strip())
    return found.group(1) if found else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path)
    parser.add_argument("--run", help="a run id (default: the one that trained the served version)")
    default_questions = Path(__file__).resolve().parents[1] / "examples/persona/questions.jsonl"
    parser.add_argument("--questions", type=Path, default=default_questions)
    parser.add_argument("--ways", default=",".join(WAYS), help="which ways, comma-separated")
    parser.add_argument("--quant", default="q8_0", help="quantisation for (a-sft) and (e)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--answers", type=Path, help="write every answer, judged, as JSON lines")
    args = parser.parse_args()
    ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    unknown = [w for w in ways if w not in WAYS]
    if unknown:
        raise SystemExit(f"unknown ways {unknown}; choose from {', '.join(WAYS)}")

    settings = load_settings(args.home)
    runs = sorted(p.parent.name for p in settings.paths.runs_dir.glob("*/run.json"))
    if not args.run and not runs:
        raise SystemExit(f"{args.home} has no training run: run `twin train` first")
    registry = ModelRegistry(settings.paths.models_dir)
    manifest = registry.current()
    if manifest is None:
        raise SystemExit(f"no model is serving in {args.home}: run `twin train` first")
    # the run that trained the served version (its held-out samples and SFT adapters)
    run_id = args.run or manifest.run_id or _run_in_notes(manifest.notes) or runs[-1]

    if args.answers:
        # written now (fails before the work if the path is wrong), then per way as measured
        try:
            args.answers.write_text("", encoding="utf-8")
        except OSError as exc:
            raise SystemExit(f"cannot write --answers {args.answers}: {exc.strerror}") from exc
    table: dict[str, dict[str, float]] = {}
    with MemoryStore.open(settings.paths.memory_dir, SentenceTransformerEmbedder()) as store:
        run = TrainingRun.resume(settings, store, run_id)
        folder = run.folder
        base = run.record.base_dir
        questions = persona_questions(args.questions) if args.questions.is_file() else []
        questions += held_out_qa(folder)
        enhance = held_out_tasks(folder, TaskKind.CONTEXT_ENHANCE)
        critic = held_out_tasks(folder, TaskKind.CONTEXT_CRITIC)

        def measure(way: str, twin: Twin, answer: Callable[[Question], str]) -> None:
            print(f"[{WAYS[way]}] {len(questions)} questions", file=sys.stderr, flush=True)
            table[way], answered = score(way, questions, answer)
            if isinstance(answer, AsServed) and answer.asked:
                table[way]["shown from memory"] = round(answer.from_memory / answer.asked, 2)
            if way in ("a", "a-sft", "e"):
                for tasks in (
                    enhance_answers(way, twin, enhance),
                    critic_answers(way, twin, critic),
                ):
                    figure = share_right(tasks)
                    if figure is not None:
                        table[way][tasks[0].group] = figure
                    answered += tasks
            if args.answers:
                with args.answers.open("a", encoding="utf-8") as out:
                    out.writelines(
                        f"{json.dumps(asdict(a), ensure_ascii=False)}\n" for a in answered
                    )
            # as soon as measured: a later way that fails does not lose this one
            print(f"[{WAYS[way]}] {json.dumps(table[way])}", file=sys.stderr, flush=True)

        served = Twin(settings, store, TwinModels(registry, threads=args.threads))
        try:
            if "a" in ways:
                measure("a", served, AsServed(served))
            if "b" in ways:
                measure("b", served, NoRetrieval(served, manifest))
            if "c" in ways:
                measure("c", served, lambda q: top_memory(served, q))
        finally:
            served.models.close()

        others = {
            "a-sft": {side: folder.sft_stack(base, side) for side in ModelSide},
            "e": {side: ModelStack(base) for side in (ModelSide.OWNER,)},
        }
        for way, stacks in others.items():
            if way not in ways:
                continue
            with tempfile.TemporaryDirectory(dir=settings.paths.root) as tmp:
                print(f"[{WAYS[way]}] exporting", file=sys.stderr, flush=True)
                ggufs = exported(stacks, Path(tmp), args.quant)
                if ModelSide.SHARED not in ggufs:  # the base is the same for both audiences
                    ggufs[ModelSide.SHARED] = ggufs[ModelSide.OWNER]
                with served_as(settings, manifest, ggufs, args.threads) as models:
                    twin = Twin(settings, store, models)
                    measure(way, twin, AsServed(twin))

    counts: dict[str, int] = {}
    for q in questions:
        counts[q.group] = counts.get(q.group, 0) + 1
    counts["held-out enhance"] = len([s for s in enhance if s.key_facts])
    counts["held-out critic"] = len(critic)
    if args.plot:
        plot(table, args.plot)
    named = {WAYS[w]: table[w] for w in ways if w in table}
    print(json.dumps({"run": run_id, "version": manifest.version, "counts": counts, **named}))


if __name__ == "__main__":
    main()
