"""`twin train` on a persona, timed: every stage, the whole run, training tokens/s, accuracy.

    python benchmarks/train_pipeline.py [PERSONA] [--strategy strong] [--tiny-size small]
        [--threads N] [--home DIR] [--fast]

PERSONA is a folder like examples/persona (twin.toml, notes/, telegram/, discord/, whatsapp/,
questions.jsonl). A fresh home is made (or --home reused), the persona ingested and its profile
built, then the training pipeline runs. Afterwards the persona's questions.jsonl is asked of the
served twin, each as its audience (self = owner, friend = a friend), with retrieval as in
serving: an answer is right when it contains one of the expected answers, and for a private
question asked by a friend when it contains none. Ends by printing one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory.embed import SentenceTransformerEmbedder
from memory.store import MemoryStore
from training.evaluate import load_questions
from training.pipeline import RunResult, TrainingRun
from training.recipe import RunOptions
from twin.config import load_settings
from twin.ingest import parse_paths, store_parsed
from twin.privacy import Audience
from twin.profile_writers import profile_builder
from twin.service import Twin, TwinModels
from twin.tasks import CoTStrategy

PERSONA = Path(__file__).resolve().parents[1] / "examples" / "persona"


def persona_inputs(persona: Path) -> list[Path]:
    """The persona's chat exports and notes folder, as `twin ingest` is given them."""
    chats = [
        p
        for folder in ("telegram", "discord", "whatsapp")
        if (persona / folder).is_dir()
        for p in sorted((persona / folder).iterdir())
    ]
    return [*chats, persona / "notes"]


def ask_questions(twin: Twin, questions_file: Path) -> dict[str, float]:
    """Accuracy on the persona's questions per (audience, private) group, through serving."""
    groups: dict[str, list[bool]] = {}
    for q in load_questions(questions_file):
        audience = Audience.owner() if q.audience == "self" else Audience.friend()
        groups.setdefault(q.group, []).append(q.right(twin.answer(q.question, audience).text))
    figures = {f"{key}_accuracy": round(sum(v) / len(v), 3) for key, v in groups.items()}
    figures["questions"] = float(sum(len(v) for v in groups.values()))
    return figures


def summary(result: RunResult, setup: dict[str, float]) -> dict[str, object]:
    metrics = result.metrics
    tokens = sum(v for k, v in metrics.items() if k.endswith(".tokens"))
    seconds = sum(v for k, v in metrics.items() if k.endswith(".seconds"))
    return {
        **setup,
        "run": result.run_id,
        "version": result.version,
        "stages_s": {str(r.stage): r.seconds for r in result.stages},
        "pipeline_s": round(result.seconds, 1),
        "training_tokens": int(tokens),
        "training_tokens_per_s": round(tokens / seconds, 1) if seconds else 0.0,
        "owner_key_fact_accuracy": metrics.get("owner.key_fact_accuracy"),
        "shared_key_fact_accuracy": metrics.get("shared.key_fact_accuracy"),
        "samples": {k: v for k, v in metrics.items() if k.endswith("train_samples")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("persona", type=Path, nargs="?", default=PERSONA)
    parser.add_argument("--strategy", type=CoTStrategy, default=CoTStrategy.STRONG)
    parser.add_argument("--tiny-size", default="small")
    parser.add_argument("--threads", type=int, default=0, help="0 = every core")
    parser.add_argument("--home", type=Path, help="keep (or reuse) the twin's home here")
    parser.add_argument("--fast", action="store_true", help="the smoke configuration")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        home.mkdir(parents=True, exist_ok=True)
        if not (home / "twin.toml").exists():
            shutil.copy(args.persona / "twin.toml", home / "twin.toml")
        settings = load_settings(home)
        embedder = SentenceTransformerEmbedder()
        setup: dict[str, float] = {}
        with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
            started = time.perf_counter()
            if store.count() == 0:
                for parsed in parse_paths(persona_inputs(args.persona), settings):
                    store_parsed(store, parsed, settings)
            setup["ingest_s"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            profile_builder(store, settings).build()
            setup["profile_s"] = round(time.perf_counter() - started, 1)
            setup["memories"] = float(store.count())

            options = RunOptions(
                strategy=args.strategy,
                tiny_size=args.tiny_size,
                threads=args.threads,
                fast=args.fast,
            )
            run = TrainingRun.create(settings, store, options)
            started = time.perf_counter()
            result = run.run()
            setup["wall_s"] = round(time.perf_counter() - started, 1)
            figures = summary(result, setup)

            questions = args.persona / "questions.jsonl"
            if questions.is_file():
                twin = Twin(settings, store, TwinModels(settings, run.registry))
                try:
                    figures["persona_questions"] = ask_questions(twin, questions)
                finally:
                    twin.models.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
