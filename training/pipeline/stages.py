"""The stages of a run, each a function of the run's context that writes into its own folder
and returns what it did. `training.pipeline.run` calls them in order."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from lm import LlamaCppLLM
from memory.store import MemoryFilter, MemoryStore
from training.dpo import HELD_OUT_ACCURACY, Preference, train_dpo
from training.evaluate import Evaluation, evaluate_key_facts
from training.export import export_stack
from training.lora import ModelStack
from training.pipeline.artifacts import (
    PipelineError,
    PrivacyViolation,
    RunFolder,
    RunRecord,
    Stage,
    StageResult,
)
from training.pipeline.data import DataRequest, TrainingData
from training.recipe import Recipe
from training.sft import TrainReport, train_sft
from training.synthesize.samples import Dataset, PreferencePair, Sample, Split
from twin.config import Settings
from twin.privacy import ModelSide
from twin.registry import Manifest, ModelFiles, ModelMetrics, ModelRegistry
from twin.tasks import PromptBudget, TaskKind, render_messages

# Shared first: the owner's model trains on top of the shared one.
SIDES = (ModelSide.SHARED, ModelSide.OWNER)
# The gate holds a run back when the base's lead on held-out samples is this unlikely by chance.
GATE_SIGNIFICANCE = 0.1


class Tokenizer(Protocol):
    """What `longest_replies` needs of a tokenizer (a transformers one has it)."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...


class Reporter(Protocol):
    """Told what the pipeline is doing, e.g. to draw progress bars."""

    def stage_started(self, stage: Stage, index: int, count: int) -> None: ...

    def progress(self, done: int, total: int) -> None: ...

    def stage_finished(self, stage: Stage, record: object) -> None: ...


@dataclass
class RunContext:
    """Everything a stage works with."""

    settings: Settings
    store: MemoryStore
    record: RunRecord
    folder: RunFolder
    data: TrainingData
    reporter: Reporter
    registry: ModelRegistry
    threads: int
    now: datetime

    @property
    def recipe(self) -> Recipe:
        return self.record.recipe

    @property
    def base(self) -> Path:
        return self.record.base_dir

    @property
    def quantizations(self) -> list[str]:
        return list(self.settings.training.quantizations)


# -- synthesize ----------------------------------------------------------------------------------


def synthesize(ctx: RunContext) -> StageResult:
    """Each model's dataset from what its audience may see; the shared one is checked to cite
    nothing a friend may not see."""
    recipe = ctx.recipe
    summary, metrics = [], {}
    for side in SIDES:
        request = DataRequest(
            side=side,
            strategy=ctx.record.options.strategy,
            budget=recipe.budget,
            seed=ctx.record.options.seed,
            train_samples=recipe.train_samples
            if side is ModelSide.SHARED
            else recipe.owner_samples,
            pairs=recipe.pairs if recipe.dpo else 0,
            held_out_pairs=recipe.held_out_pairs if recipe.dpo else 0,
        )
        dataset = ctx.data.dataset(ctx.store, request)
        if side is ModelSide.SHARED:
            check_audience(dataset, ctx.store, side.audience.memory_filter())
        train, test = dataset.split(Split.TRAIN), dataset.split(Split.TEST)
        if not train:
            seen = "friends may see" if side is ModelSide.SHARED else "at all"
            raise PipelineError(
                f"synthesis produced no training samples for the {side} model: does memory "
                f"hold anything {seen}?"
            )
        dataset.save(ctx.folder.dataset_dir(side))
        summary.append(f"{side}: {len(train)} train, {len(test)} test, {len(dataset.pairs)} pairs")
        metrics[side] = ModelMetrics(train_samples=len(train), test_samples=len(test))
    return StageResult("; ".join(summary), metrics)


def check_audience(dataset: Dataset, store: MemoryStore, memory_filter: MemoryFilter) -> None:
    """Refuse a dataset that cites a memory `memory_filter` does not let through (in a prompt's
    context or as a reply's support)."""
    cited: dict[str, str] = {}
    requests = [(s.id, s.request, s.support) for s in dataset.samples]
    requests += [(p.id, p.request, ()) for p in dataset.pairs]
    for item_id, request, support in requests:
        for memory_id in (*(c.id for c in request.context), *support):
            cited.setdefault(memory_id, item_id)
    allowed = store.allowed(list(cited), memory_filter)
    hidden = [(memory_id, item) for memory_id, item in cited.items() if memory_id not in allowed]
    if hidden:
        examples = ", ".join(f"{item} cites {memory_id}" for memory_id, item in hidden[:3])
        raise PrivacyViolation(
            f"the shared model's data cites {len(hidden)} memories friends may not see "
            f"({examples}); refusing to train on it"
        )


# -- training ------------------------------------------------------------------------------------


def sft(ctx: RunContext, side: ModelSide) -> StageResult:
    """A LoRA adapter that learns the side's training samples; the owner's model trains on top
    of the shared model's SFT."""
    stack = ModelStack(ctx.base)
    if side is ModelSide.OWNER:
        stack = stack.plus(ctx.folder.adapter(Stage.SFT_SHARED))
    budget = ctx.recipe.budget
    conversations = [s.messages(budget) for s in ctx.folder.dataset(side).split(Split.TRAIN)]
    hyper = ctx.recipe.sft if side is ModelSide.SHARED else ctx.recipe.sft_owner
    _, report = train_sft(
        stack,
        conversations,
        ctx.folder.stage_dir(Stage.sft(side)),
        hyper,
        name=f"{side} sft",
        progress=ctx.reporter.progress,
    )
    metrics = ModelMetrics(
        sft_loss=report.last_loss,
        sft_tokens=report.tokens,
        sft_tokens_per_second=round(report.tokens_per_second, 1),
    )
    return StageResult(describe(report), {side: metrics})


def dpo(ctx: RunContext, side: ModelSide) -> StageResult:
    """A LoRA adapter on top of the SFT model that prefers the chosen replies of the side's
    pairs; the held-out pairs measure whether it learned to."""
    dataset = ctx.folder.dataset(side)
    train = [p for p in dataset.pairs if p.split == Split.TRAIN]
    held_out = [p for p in dataset.pairs if p.split == Split.TEST]
    if not train:
        return StageResult("no preference pairs: the SFT model is final")
    recipe = ctx.recipe
    assert recipe.dpo is not None
    _, report = train_dpo(
        ctx.folder.sft_stack(ctx.base, side),
        [preference(p, recipe.budget) for p in train],
        ctx.folder.stage_dir(Stage.dpo(side)),
        recipe.dpo,
        beta=recipe.dpo_beta,
        sft_weight=recipe.dpo_sft_weight,
        held_out=[preference(p, recipe.budget) for p in held_out],
        name=f"{side} dpo",
        progress=ctx.reporter.progress,
    )
    metrics = ModelMetrics(
        dpo_pairs=len(train),
        dpo_loss=report.last_loss,
        dpo_reward_accuracy=report.final.get("rewards/accuracies"),
        held_out_reward_accuracy=report.final.get(HELD_OUT_ACCURACY),
    )
    held = report.final.get(HELD_OUT_ACCURACY)
    summary = describe(report) + (
        f", held-out reward accuracy {held:.2f} on {len(held_out)} pairs"
        if held is not None
        else ""
    )
    return StageResult(summary, {side: metrics})


def preference(pair: PreferencePair, budget: PromptBudget) -> Preference:
    return Preference(tuple(render_messages(pair.request, budget)), pair.chosen, pair.rejected)


# -- export, evaluate, register ------------------------------------------------------------------


def export(ctx: RunContext) -> StageResult:
    """Both models merged and written as GGUF, in every configured quantisation."""
    written = []
    for done, side in enumerate(SIDES, start=1):
        targets = {q: ctx.folder.export_path(side, q) for q in ctx.quantizations}
        for path in export_stack(ctx.folder.final_stack(ctx.base, side), targets).values():
            written.append(f"{path.name} ({path.stat().st_size / 1e6:.0f} MB)")
        ctx.reporter.progress(done, len(SIDES))
    return StageResult(", ".join(written))


def evaluate(ctx: RunContext) -> StageResult:
    """Each served model on its held-out samples: does the reply carry the key facts? A full
    run also asks the untuned base the same (exported as the served models are), which
    `register` holds the models to; a smoke run is not a useful twin and skips it."""
    recipe = ctx.recipe
    served = ctx.quantizations[0]
    stage_dir = ctx.folder.stage_dir(Stage.EVALUATE)
    base_gguf = None
    if not ctx.record.options.fast:
        # written afresh every time: a run killed while writing it may have left half a file
        base_gguf = stage_dir / f"base.{served}.gguf"
        export_stack(ModelStack(ctx.base), {served: base_gguf})
    summary, metrics = [], {}
    try:
        for side in SIDES:
            held_out = ctx.folder.dataset(side).split(Split.TEST)[: recipe.eval_samples]
            evaluation = _key_facts(ctx, ctx.folder.export_path(side, served), held_out, str(side))
            evaluation.save(stage_dir / f"{side}.json")
            base = None
            if base_gguf is not None:
                base = _key_facts(ctx, base_gguf, held_out, f"base ({side} samples)")
                base.save(stage_dir / f"base-{side}.json")
            base_only, model_only = _discordant(base, evaluation) if base else (None, None)
            metrics[side] = ModelMetrics(
                key_fact_accuracy=round(evaluation.accuracy, 4),
                key_fact_graded=len(evaluation.graded),
                base_key_fact_accuracy=round(base.accuracy, 4) if base else None,
                base_only_right=base_only,
                model_only_right=model_only,
                accuracy_by_kind={k: round(v, 4) for k, v in evaluation.by_kind().items()},
            )
            against = f" (untuned base {base.accuracy:.2f})" if base else ""
            summary.append(
                f"{side}: key-fact accuracy {evaluation.accuracy:.2f}{against} "
                f"on {len(evaluation.graded)} held-out samples"
            )
    finally:
        if base_gguf is not None:
            base_gguf.unlink(missing_ok=True)  # as big as a served model, and made again cheaply
    return StageResult("; ".join(summary), metrics)


def _key_facts(ctx: RunContext, gguf: Path, samples: list[Sample], name: str) -> Evaluation:
    llm = LlamaCppLLM(gguf, threads=ctx.threads, context_size=ctx.recipe.context_size)
    try:
        return evaluate_key_facts(
            llm,
            samples,
            ctx.recipe.budget,
            max_new_tokens=ctx.recipe.max_new_tokens,
            name=name,
            progress=ctx.reporter.progress,
        )
    finally:
        llm.close()


def _discordant(base: Evaluation, model: Evaluation) -> tuple[int, int]:
    """How many held-out samples only the base got right, and how many only the model."""
    model_right = {g.sample_id: g.correct for g in model.graded}
    pairs = [
        (g.correct, model_right[g.sample_id]) for g in base.graded if g.sample_id in model_right
    ]
    return sum(b and not m for b, m in pairs), sum(m and not b for b, m in pairs)


def worse_than_base(metrics: dict[ModelSide, ModelMetrics]) -> str | None:
    """Why the run's models must not be served, or None: a model the untuned base beats on
    the same held-out samples would make the twin worse than no training. Sample by sample
    (an exact sign test on the samples only one of them got right), so that one sample in a
    dozen going the base's way does not hold a run back, and a real loss does."""
    for side, measured in metrics.items():
        trained, base = measured.key_fact_accuracy, measured.base_key_fact_accuracy
        if trained is None or base is None or trained >= base:
            continue
        base_only, model_only = measured.base_only_right, measured.model_only_right
        paired = base_only is not None and model_only is not None
        if paired and _sign_test(base_only, model_only) >= GATE_SIGNIFICANCE:
            continue
        return (
            f"the {side} model is right on {trained:.0%} of its held-out samples, "
            f"the untuned base on {base:.0%}"
        )
    return None


def _sign_test(wins: int, losses: int) -> float:
    """The chance of `wins` or more of `wins + losses` coin flips: how likely the base's lead
    is if the two were equally good."""
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n


def register(
    ctx: RunContext, metrics: dict[ModelSide, ModelMetrics], seconds: dict[str, float]
) -> StageResult:
    """A new registry version holding the GGUF files (moved, not copied: the registry keeps the
    only copy, read-only) and the adapters, promoted when the run was asked to."""
    folder = ctx.folder
    # a crash after allocating reuses the folder instead of leaving an empty version behind
    if folder.version_file.is_file():
        target = ctx.registry.root / folder.version_file.read_text(encoding="utf-8").strip()
        target.mkdir(parents=True, exist_ok=True)
    else:
        target = ctx.registry.allocate()
        folder.version_file.write_text(target.name, encoding="utf-8")
    models = {}
    for side in SIDES:
        ggufs = []
        for quant in ctx.quantizations:
            name = f"{side}.{quant}.gguf"
            _move(folder.export_path(side, quant), target / name)
            ggufs.append(name)
        adapters = []
        for index, adapter in enumerate(folder.final_stack(ctx.base, side).adapters, start=1):
            relative = f"adapters/{side}/{index}-{adapter.parent.name}"
            shutil.rmtree(target / relative, ignore_errors=True)
            shutil.copytree(adapter, target / relative)
            adapters.append(relative)
        models[side] = ModelFiles(ggufs=ggufs, adapters=adapters)
    manifest = manifest_for(ctx, target.name, models, metrics, seconds)
    ctx.registry.register(manifest)
    if not ctx.record.options.promote:
        return StageResult(f"{manifest.version} registered (not promoted)")
    if reason := worse_than_base(metrics):
        return StageResult(f"{manifest.version} registered, not promoted: {reason}")
    ctx.registry.promote(manifest.version)
    return StageResult(f"{manifest.version} promoted to current")


def manifest_for(
    ctx: RunContext,
    version: str,
    models: dict[ModelSide, ModelFiles],
    metrics: dict[ModelSide, ModelMetrics],
    seconds: dict[str, float],
) -> Manifest:
    datasets = {side: ctx.folder.dataset(side) for side in SIDES}
    samples = {
        f"{side}:{key}": count
        for side, dataset in datasets.items()
        for key, count in dataset.counts().items()
    }
    budget = ctx.recipe.budget
    return Manifest(
        version=version,
        created_at=ctx.now,
        base=ctx.record.options.base,
        strategy=str(ctx.record.options.strategy),
        data_hash=combined_hash(d.content_hash() for d in datasets.values()),
        models=models,
        samples=samples,
        metrics=metrics,
        stage_seconds=seconds,
        memory_count=ctx.store.count(),
        context_size=ctx.recipe.context_size,
        max_new_tokens=ctx.recipe.max_new_tokens,
        longest_replies=longest_replies(datasets.values(), ModelStack(ctx.base).tokenizer()),
        context_memories=budget.memories,
        context_chars=budget.chars_per_memory,
        context_bio=budget.bio,
        run_id=ctx.record.run_id,
        notes=f"run {ctx.record.run_id}",
    )


# -- helpers -------------------------------------------------------------------------------------


def longest_replies(datasets: Iterable[Dataset], tokenizer: Tokenizer) -> dict[TaskKind, int]:
    """Per task, the most tokens a sample's reply has in `datasets` (what serving caps at)."""
    longest: dict[TaskKind, int] = {}
    for dataset in datasets:
        for sample in dataset.samples:
            kind = sample.request.kind
            tokens = len(tokenizer.encode(sample.reply, add_special_tokens=False))
            longest[kind] = max(longest.get(kind, 0), tokens)
    return longest


def describe(report: TrainReport) -> str:
    loss = f", loss {report.last_loss:.3f}" if report.last_loss is not None else ""
    return (
        f"{report.examples} examples, {report.steps} steps, {report.seconds:.0f}s, "
        f"{report.tokens_per_second:.0f} tokens/s{loss}"
    )


def combined_hash(hashes: Iterable[str]) -> str:
    """One hash for several datasets' content hashes."""
    import hashlib

    return hashlib.sha256("".join(hashes).encode()).hexdigest()[:16]


def _move(source: Path, target: Path) -> None:
    """Move a file into the registry; a resumed run finds the ones moved before the crash."""
    if not source.is_file():
        if target.is_file():
            return
        raise PipelineError(f"{source} is missing: run the export stage again")
    target.unlink(missing_ok=True)
    try:
        os.replace(source, target)
    except OSError:  # another disk: copy, then remove the original
        shutil.copy2(source, target)
        source.unlink()
