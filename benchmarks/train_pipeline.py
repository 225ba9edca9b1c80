"""`twin train` on a persona, timed: every stage, the whole run, each trainer's tokens/s, the
held-out accuracy, and the persona's questions asked of the served twin.

    python benchmarks/train_pipeline.py [PERSONA] [--fast] [--threads N] [--base BASE] \
        [--strategy strong] [--questions N] [--home DIR]

PERSONA is a folder like examples/persona (twin.toml, notes/, telegram/, discord/, whatsapp/,
questions.jsonl). A fresh home is made (or --home reused), the persona ingested and its profile
built, then `TrainingRun` runs with `RunOptions` from the persona's `[training]` and the flags:
--base (a packaged base's name, a model folder, a .gguf file or a hub id; default the packaged
SmolLM2-135M-Instruct, converted into the home the first time: `prepare_s`), --fast (the smoke
recipe), --threads (torch and llama.cpp; 0 = every core). Per-stage seconds come from the run's
stage records, tokens/s from each trainer's report. Afterwards the persona's questions (all, or
--questions of them, spread over the file; 0 = none) are asked of the served twin, each as its
audience (self = owner, friend = a friend), with retrieval as in serving: an answer is right when
it contains one of the expected answers, and for a private question asked by a friend when it
contains none. Ends by printing one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory.embed import SentenceTransformerEmbedder
from memory.store import MemoryStore
from serving.service import Twin, open_twin
from training.evaluate import PersonaQuestion, load_questions
from training.pipeline import RunResult, Stage, TrainingRun
from training.recipe import RunOptions
from training.sft import REPORT, TrainReport
from twin.config import load_settings
from twin.ingest import parse_paths, store_parsed
from twin.profile_writers import profile_builder
from twin.tasks import CoTStrategy

PERSONA = Path(__file__).resolve().parents[1] / "examples" / "persona"
TRAINERS = (Stage.SFT_SHARED, Stage.SFT_OWNER, Stage.DPO_SHARED, Stage.DPO_OWNER)


def persona_inputs(persona: Path) -> list[Path]:
    """The persona's chat exports and notes folder, as `twin ingest` is given them."""
    chats = [
        p
        for folder in ("telegram", "discord", "whatsapp")
        if (persona / folder).is_dir()
        for p in sorted((persona / folder).iterdir())
    ]
    return [*chats, persona / "notes"]


def spread(questions: list[PersonaQuestion], count: int | None) -> list[PersonaQuestion]:
    """`count` questions taken evenly over the list (all when None or more than there are)."""
    if count is None or count >= len(questions):
        return questions
    return [questions[i * len(questions) // count] for i in range(count)]


def ask_questions(twin: Twin, questions: list[PersonaQuestion]) -> dict[str, float]:
    """Accuracy on the persona's questions per (audience, private) group, through serving."""
    groups: dict[str, list[bool]] = {}
    seconds = []
    for q in questions:
        audience = q.asker.audience
        started = time.perf_counter()
        reply = twin.answer(q.question, audience).text
        seconds.append(time.perf_counter() - started)
        groups.setdefault(q.group, []).append(q.right(reply))
    figures: dict[str, float] = {
        f"{key}_accuracy": round(sum(v) / len(v), 3) for key, v in sorted(groups.items())
    }
    figures["questions"] = len(seconds)
    figures["answer_s_mean"] = round(sum(seconds) / len(seconds), 2)
    return figures


def trainers(result: RunResult) -> dict[str, dict[str, Any]]:
    """What each trainer that ran reported: examples, steps, tokens, seconds, tokens/s."""
    out = {}
    for stage in TRAINERS:
        path = result.run_dir / stage.value / REPORT
        if path.is_file():
            report = TrainReport.load(path)
            out[stage.value] = {
                "examples": report.examples,
                "steps": report.steps,
                "tokens": report.tokens,
                "seconds": round(report.seconds, 1),
                "tokens_per_s": round(report.tokens_per_second, 1),
                "last_loss": report.last_loss,
            }
    return out


def summary(run: TrainingRun, result: RunResult) -> dict[str, Any]:
    trained = trainers(result)
    tokens = sum(t["tokens"] for t in trained.values())
    seconds = sum(t["seconds"] for t in trained.values())
    recipe = run.recipe
    return {
        "run": result.run_id,
        "version": result.version,
        "promoted": result.promoted,
        "base": run.options.base,
        "strategy": str(run.options.strategy),
        "fast": run.options.fast,
        "threads": run.threads,
        "recipe": {
            "train_samples": recipe.train_samples,
            "owner_samples": recipe.owner_samples,
            "pairs": recipe.pairs if recipe.dpo else 0,
            "sft_epochs": recipe.sft.epochs,
            "max_length": recipe.sft.max_length,
            "lora_r": recipe.sft.lora.r,
        },
        "stages_s": {str(r.stage): r.seconds for r in result.stages},
        "pipeline_s": round(result.seconds, 1),
        "trainers": trained,
        "training_tokens": tokens,
        "training_tokens_per_s": round(tokens / seconds, 1) if seconds else 0.0,
        "key_fact_accuracy": {
            str(side): m.key_fact_accuracy for side, m in sorted(result.metrics.items())
        },
        "train_samples": {str(side): m.train_samples for side, m in sorted(result.metrics.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("persona", type=Path, nargs="?", default=PERSONA)
    parser.add_argument("--fast", action="store_true", help="the smoke recipe")
    parser.add_argument("--threads", type=int, default=0, help="0 = every core")
    parser.add_argument("--base", help="the base model (default: [training] base, or packaged)")
    parser.add_argument("--strategy", type=CoTStrategy, help="default: [training] strategy")
    parser.add_argument("--questions", type=int, help="persona questions to ask (default: all)")
    parser.add_argument("--home", type=Path, help="keep (or reuse) the twin's home here")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        home.mkdir(parents=True, exist_ok=True)
        if not (home / "twin.toml").exists():
            shutil.copy(args.persona / "twin.toml", home / "twin.toml")
        settings = load_settings(home, llm={"twin": {"threads": args.threads}})
        embedder = SentenceTransformerEmbedder()
        setup: dict[str, Any] = {}
        with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
            started = time.perf_counter()
            if store.count() == 0:
                for parsed in parse_paths(persona_inputs(args.persona), settings):
                    store_parsed(store, parsed, settings)
            setup["ingest_s"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            profile_builder(store, settings).build()
            setup["profile_s"] = round(time.perf_counter() - started, 1)
            setup["memories"] = store.count()

            options = RunOptions.from_settings(
                settings.training,
                base=args.base,
                strategy=args.strategy,
                threads=args.threads,
                fast=args.fast,
            )
            started = time.perf_counter()
            run = TrainingRun.create(settings, store, options)
            setup["prepare_s"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            result = run.run()
            setup["run_wall_s"] = round(time.perf_counter() - started, 1)
            figures = {**setup, **summary(run, result)}

            questions_file = args.persona / "questions.jsonl"
            if questions_file.is_file() and args.questions != 0:
                questions = spread(load_questions(questions_file), args.questions)
                twin = open_twin(settings, store)
                try:
                    figures["persona_questions"] = ask_questions(twin, questions)
                finally:
                    twin.models.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
