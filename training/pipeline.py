"""`twin train`: from memory to two registered, served models, in resumable stages.

    <home>/runs/<run-id>/
        run.json                 the options and the recipe (hyperparameters) of the run
        train.log                what every stage did
        loss.png                 the loss curves of every trainer, per model
        synthesize/              owner/ and shared/ datasets, memory text per audience
        tokenizer/               (tiny base) the tokenizer, trained on what friends may see
        pretrain/                (tiny base) the model learning the language of that memory
        sft-shared/ sft-owner/   supervised fine-tuning (model/ is the result)
        pairs/                   preference pairs: synthesized ones and the SFT models' misses
        dpo-shared/ dpo-owner/   preference training
        export/                  GGUF files, one per model and quantisation
        evaluate/                held-out key-fact accuracy per model
        register/                the registry version this run became

Every stage writes its outputs, then `done.json`; a resumed run skips the stages that have one,
so a crash costs at most the stage it interrupted.

Two audiences, two models. The shared model, which answers everyone but the owner, and its
tokenizer see only memories friends may see: their memory text, the shared dataset
(synthesized for the friend audience) and its preference pairs. The owner's model starts from
the shared SFT model and learns the rest: all memory text and the owner's dataset. Private
memories never enter anything the shared model is made from; the synthesize stage checks that
every memory the shared dataset cites is one friends may see.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from pydantic import TypeAdapter

from memory.models import Memory
from memory.store import MemoryFilter, MemoryStore
from training.dpo import Preference, train_dpo
from training.evaluate import evaluate_key_facts
from training.export import export_gguf
from training.recipe import Recipe, RunOptions, recipe_for
from training.sft import (
    MODEL,
    REPORT,
    TrainReport,
    quiet_libraries,
    train_language_model,
    train_sft,
)
from training.synthesize.samples import Dataset, PreferencePair, Split
from training.tiny import create_model, tiny_size, train_tokenizer
from twin.config import Settings
from twin.llm import GenerationOptions, LlamaCppLLM
from twin.privacy import Audience, AudienceKind
from twin.registry import Manifest, ModelFiles, ModelRegistry
from twin.service import BioSource
from twin.tasks import ContextMemory, CoTStrategy, PromptBudget, TaskRequest, render_messages

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
DONE_FILE = "done.json"
LOG_FILE = "train.log"
LOSS_PLOT = "loss.png"
# The two models, by the name their files carry.
OWNER = "owner"
SHARED = "shared"
SIDES = (SHARED, OWNER)
AUDIENCE_OF = {OWNER: AudienceKind.OWNER, SHARED: AudienceKind.FRIEND}


class PipelineError(Exception):
    """Training cannot go on; the message says why and what to do."""


class PrivacyViolation(PipelineError):
    """Data meant for the shared model cites a memory friends may not see."""


class Stage(StrEnum):
    SYNTHESIZE = "synthesize"
    TOKENIZER = "tokenizer"
    PRETRAIN = "pretrain"
    SFT_SHARED = "sft-shared"
    SFT_OWNER = "sft-owner"
    PAIRS = "pairs"
    DPO_SHARED = "dpo-shared"
    DPO_OWNER = "dpo-owner"
    EXPORT = "export"
    EVALUATE = "evaluate"
    REGISTER = "register"


# -- inputs --------------------------------------------------------------------------------------


class TrainingData(Protocol):
    """Where a run's datasets come from: one per audience, synthesized from memory."""

    def dataset(
        self,
        store: MemoryStore,
        audience: AudienceKind,
        strategy: CoTStrategy,
        budget: PromptBudget,
        *,
        seed: int,
        train_samples: int | None,
    ) -> Dataset:
        """The audience's dataset; about `train_samples` training samples (None = no limit
        beyond the source's own)."""
        ...


@dataclass
class SynthesizedData:
    """The default: `training.synthesize.synthesize` with the L1 facts the audience may see, the
    configured synthesizer and judge (none configured = offline synthesis), and the bios serving
    will show (`bios`, when the prompt budget has room for one)."""

    settings: Settings
    bios: BioSource | None = None

    def dataset(
        self,
        store: MemoryStore,
        audience: AudienceKind,
        strategy: CoTStrategy,
        budget: PromptBudget,
        *,
        seed: int,
        train_samples: int | None,
    ) -> Dataset:
        from memory.profile import Profile
        from training.synthesize import SynthesisLimits, synthesize
        from training.synthesize.material import Fact
        from twin.llm import build_llm

        who = Audience(audience)
        profile = Profile(store, self.settings.owner.name).for_audience(who.visibilities)
        roles = self.settings.llm
        return synthesize(
            store,
            audience=who,
            owner=self.settings.owner.name,
            strategy=strategy,
            budget=budget,
            facts=[Fact.from_view(view) for view in profile.facts],
            bios=self.bios,
            synthesizer=build_llm(roles.synthesizer) if roles.synthesizer.configured else None,
            judge=build_llm(roles.judge) if roles.judge.configured else None,
            seed=seed,
            limits=SynthesisLimits(train_samples=train_samples) if train_samples else None,
        )


def resolve_base(base: str) -> Path:
    """The folder of a pretrained base: `base` itself if it is a folder, else the local Hugging
    Face cache's copy of the hub id `base` (downloaded first unless offline)."""
    folder = Path(base).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise PipelineError(f"{folder} is not a model folder: it has no config.json")
        return folder
    if folder.is_absolute() or base.startswith((".", "~")) or base.count("/") != 1:
        raise PipelineError(f"base model folder {base!r} does not exist")
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import is_offline_mode
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(base, local_files_only=True))
    except LocalEntryNotFoundError:
        if is_offline_mode():
            raise PipelineError(
                f"the base model {base!r} is not in the local Hugging Face cache and downloads "
                f"are off (HF_HUB_OFFLINE). Download it once with `hf download {base}` on a "
                "machine with network, or set `training.base` in twin.toml (or --base) to a "
                "model folder, or leave it empty to train the offline tiny base."
            ) from None
    try:
        return Path(snapshot_download(base))
    except (HfHubHTTPError, OSError) as exc:
        raise PipelineError(
            f"cannot download the base model {base!r}: {exc}. Check the id, or point "
            "`training.base` at a model folder."
        ) from exc


# -- progress ------------------------------------------------------------------------------------


class Reporter(Protocol):
    """Told what the pipeline is doing, e.g. to draw progress bars."""

    def stage_started(self, stage: Stage, index: int, count: int) -> None: ...

    def progress(self, done: int, total: int) -> None: ...

    def stage_finished(self, stage: Stage, record: StageRecord) -> None: ...


class LogReporter:
    """Reports to the log only."""

    def stage_started(self, stage: Stage, index: int, count: int) -> None:
        log.info("stage %d/%d: %s", index, count, stage)

    def progress(self, done: int, total: int) -> None:
        return None

    def stage_finished(self, stage: Stage, record: StageRecord) -> None:
        state = "skipped (done before)" if record.resumed else f"done in {record.seconds:.1f}s"
        log.info("stage %s %s: %s", stage, state, record.summary)


# -- records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageRecord:
    """What a finished stage wrote into its done.json."""

    stage: Stage
    seconds: float
    finished_at: datetime
    summary: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    # set when a resumed run found the stage already done
    resumed: bool = False


@dataclass(frozen=True)
class RunRecord:
    """run.json: what a run was asked to do."""

    run_id: str
    created_at: datetime
    options: RunOptions
    recipe: Recipe


@dataclass(frozen=True)
class RunResult:
    """What `twin train` reports at the end."""

    run_id: str
    run_dir: Path
    stages: list[StageRecord]
    version: str | None
    promoted: bool
    metrics: dict[str, float]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


_RUN = TypeAdapter(RunRecord)
_STAGE = TypeAdapter(StageRecord)


# -- the run -------------------------------------------------------------------------------------


class TrainingRun:
    """One run of the pipeline in its own folder; `run()` does (or finishes) it."""

    def __init__(
        self,
        settings: Settings,
        store: MemoryStore,
        record: RunRecord,
        *,
        data: TrainingData | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.record = record
        self.options = record.options
        self.recipe = record.recipe
        self.dir = settings.paths.runs_dir / record.run_id
        self.data = data or SynthesizedData(settings)
        self.reporter = reporter or LogReporter()
        self.registry = ModelRegistry(settings.paths.models_dir)
        # the pretrained base's folder, resolved when the run starts
        self._base_dir: Path | None = None

    @classmethod
    def create(
        cls,
        settings: Settings,
        store: MemoryStore,
        options: RunOptions,
        *,
        data: TrainingData | None = None,
        reporter: Reporter | None = None,
        recipe: Recipe | None = None,
    ) -> TrainingRun:
        """A new run folder with its run.json. `recipe` replaces the one the options imply
        (benchmarks and tests use it to try other numbers)."""
        now = datetime.now(UTC)
        run_id = f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        recipe = recipe or recipe_for(settings.training, options)
        if not options.tiny:
            # fail before any work when the base is missing; fit the context to it
            longest = _max_positions(resolve_base(options.base))
            recipe = replace(recipe, context_size=min(recipe.context_size, longest))
        record = RunRecord(run_id, now, options, recipe)
        folder = settings.paths.runs_dir / run_id
        folder.mkdir(parents=True)
        (folder / RUN_FILE).write_bytes(_RUN.dump_json(record, indent=2))
        return cls(settings, store, record, data=data, reporter=reporter)

    @classmethod
    def resume(
        cls,
        settings: Settings,
        store: MemoryStore,
        run_id: str,
        *,
        data: TrainingData | None = None,
        reporter: Reporter | None = None,
    ) -> TrainingRun:
        """The run `run_id`, with the options and recipe it started with."""
        path = settings.paths.runs_dir / run_id / RUN_FILE
        if not path.is_file():
            known = sorted(p.parent.name for p in settings.paths.runs_dir.glob(f"*/{RUN_FILE}"))
            raise PipelineError(
                f"no training run {run_id!r} in {settings.paths.runs_dir}"
                + (f"; runs: {', '.join(known)}" if known else "")
            )
        record = _RUN.validate_json(path.read_bytes())
        return cls(settings, store, record, data=data, reporter=reporter)

    # -- driving ---------------------------------------------------------------------------------

    @property
    def stages(self) -> list[Stage]:
        """The stages this run goes through, in order."""
        stages = list(Stage)
        if not self.options.tiny:
            stages.remove(Stage.TOKENIZER)
            stages.remove(Stage.PRETRAIN)
        if self.recipe.dpo is None:
            for stage in (Stage.PAIRS, Stage.DPO_SHARED, Stage.DPO_OWNER):
                stages.remove(stage)
        return stages

    def run(self, *, stop_after: Stage | None = None) -> RunResult:
        """Run every stage not done yet (up to `stop_after`, if given)."""
        steps: dict[Stage, Callable[[], tuple[str, dict[str, float]]]] = {
            Stage.SYNTHESIZE: self._synthesize,
            Stage.TOKENIZER: self._tokenizer,
            Stage.PRETRAIN: self._pretrain,
            Stage.SFT_SHARED: self._sft_shared,
            Stage.SFT_OWNER: self._sft_owner,
            Stage.PAIRS: self._pairs,
            Stage.DPO_SHARED: lambda: self._dpo(SHARED),
            Stage.DPO_OWNER: lambda: self._dpo(OWNER),
            Stage.EXPORT: self._export,
            Stage.EVALUATE: self._evaluate,
            Stage.REGISTER: self._register,
        }
        quiet_libraries()
        self._base_dir = None if self.options.tiny else resolve_base(self.options.base)
        records: list[StageRecord] = []
        stages = self.stages
        with self._run_log(), _torch_threads(self.threads):
            log.info("run %s: %s", self.record.run_id, self.options)
            for index, stage in enumerate(stages, start=1):
                self.reporter.stage_started(stage, index, len(stages))
                record = self._done(stage)
                if record is None:
                    started = time.perf_counter()
                    self.stage_dir(stage).mkdir(parents=True, exist_ok=True)
                    summary, metrics = steps[stage]()
                    record = StageRecord(
                        stage,
                        round(time.perf_counter() - started, 2),
                        datetime.now(UTC),
                        summary,
                        metrics,
                    )
                    (self.stage_dir(stage) / DONE_FILE).write_bytes(
                        _STAGE.dump_json(record, indent=2)
                    )
                    self._plot_losses()
                records.append(record)
                self.reporter.stage_finished(stage, record)
                if stage == stop_after:
                    break
        metrics = {k: v for r in records for k, v in r.metrics.items()}
        version = self._registered_version()
        return RunResult(
            run_id=self.record.run_id,
            run_dir=self.dir,
            stages=records,
            version=version,
            promoted=version is not None and self.registry.current_version() == version,
            metrics=metrics,
        )

    @property
    def threads(self) -> int:
        return self.options.threads or os.cpu_count() or 1

    def stage_dir(self, stage: Stage) -> Path:
        return self.dir / stage.value

    def _done(self, stage: Stage) -> StageRecord | None:
        path = self.stage_dir(stage) / DONE_FILE
        if not path.is_file():
            return None
        return replace(_STAGE.validate_json(path.read_bytes()), resumed=True)

    @contextmanager
    def _run_log(self) -> Iterator[None]:
        """Append everything the training code logs to the run's train.log."""
        handler = logging.FileHandler(self.dir / LOG_FILE, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("training")
        previous = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        try:
            yield
        except Exception:
            log.exception("run %s failed", self.record.run_id)
            raise
        finally:
            logger.removeHandler(handler)
            logger.setLevel(previous)
            handler.close()

    # -- stages ----------------------------------------------------------------------------------

    def _synthesize(self) -> tuple[str, dict[str, float]]:
        folder = self.stage_dir(Stage.SYNTHESIZE)
        summary = []
        metrics: dict[str, float] = {}
        for side in SIDES:
            audience = AUDIENCE_OF[side]
            memory_filter = Audience(audience).memory_filter()
            dataset = self.data.dataset(
                self.store,
                audience,
                self.options.strategy,
                self.recipe.budget,
                seed=self.options.seed,
                train_samples=self.recipe.train_samples,
            )
            if side == SHARED:
                check_audience(dataset, self.store, memory_filter)
            if not dataset.split(Split.TRAIN):
                raise PipelineError(
                    f"synthesis produced no training samples for the {side} model: does memory "
                    f"hold anything {'friends may see' if side == SHARED else 'at all'}?"
                )
            dataset.save(folder / side)
            docs = memory_documents(
                self.store.iter_memories(memory_filter), self.recipe.memory_doc_chars
            )
            _write_texts(folder / side / "memory.jsonl", docs)
            train, test = len(dataset.split(Split.TRAIN)), len(dataset.split(Split.TEST))
            summary.append(f"{side}: {train} train, {test} test, {len(dataset.pairs)} pairs")
            metrics[f"{side}.train_samples"] = float(train)
        return "; ".join(summary), metrics

    def _tokenizer(self) -> tuple[str, dict[str, float]]:
        # The shared model's text only: a tokenizer trained on private text would carry
        # private words in its vocabulary.
        dataset = self._dataset(SHARED)
        texts = [
            *_read_texts(self._memory_docs(SHARED)),
            *(
                "\n".join(m.content for m in s.messages(self.recipe.budget))
                for s in dataset.samples
            ),
            *(f"{p.chosen}\n{p.rejected}" for p in dataset.pairs),
        ]
        folder = self.stage_dir(Stage.TOKENIZER)
        train_tokenizer(texts, folder, vocab_size=self.recipe.tokenizer_vocab)
        from training.tiny import load_tokenizer

        size = len(load_tokenizer(folder))
        return f"{size} tokens from {len(texts)} texts", {}

    def _pretrain(self) -> tuple[str, dict[str, float]]:
        folder = self.stage_dir(Stage.PRETRAIN)
        size = tiny_size("micro" if self.options.fast else self.options.tiny_size)
        initial = folder / "initial"
        model = create_model(self.stage_dir(Stage.TOKENIZER), size, initial, seed=self.options.seed)
        parameters = sum(p.numel() for p in model.parameters())
        del model
        assert self.recipe.pretrain is not None
        _, report = train_language_model(
            initial,
            _read_texts(self._memory_docs(SHARED)),
            folder,
            self.recipe.pretrain,
            name="shared pretrain",
            progress=self.reporter.progress,
        )
        shutil.rmtree(initial)
        return (
            f"{size.name} model, {parameters / 1e6:.1f}M parameters; {_describe(report)}",
            _train_metrics("shared.pretrain", report),
        )

    def _sft_shared(self) -> tuple[str, dict[str, float]]:
        start = self.stage_dir(Stage.PRETRAIN) / MODEL if self.options.tiny else self._base_dir
        assert start is not None
        _, report = train_sft(
            start,
            self._conversations(SHARED),
            self.stage_dir(Stage.SFT_SHARED),
            self.recipe.sft,
            name="shared sft",
            progress=self.reporter.progress,
        )
        return _describe(report), _train_metrics("shared.sft", report)

    def _sft_owner(self) -> tuple[str, dict[str, float]]:
        folder = self.stage_dir(Stage.SFT_OWNER)
        start = self.stage_dir(Stage.SFT_SHARED) / MODEL
        metrics: dict[str, float] = {}
        summary = ""
        if self.recipe.owner_text is not None:
            start, report = train_language_model(
                start,
                _read_texts(self._memory_docs(OWNER)),
                folder / "text",
                self.recipe.owner_text,
                name="owner memory text",
                progress=self.reporter.progress,
            )
            metrics.update(_train_metrics("owner.text", report))
            summary = f"memory text: {_describe(report)}; "
        _, report = train_sft(
            start,
            self._conversations(OWNER),
            folder,
            self.recipe.sft_owner,
            name="owner sft",
            progress=self.reporter.progress,
        )
        shutil.rmtree(folder / "text", ignore_errors=True)
        metrics.update(_train_metrics("owner.sft", report))
        return summary + _describe(report), metrics

    def _pairs(self) -> tuple[str, dict[str, float]]:
        """Preference pairs per model: the synthesized ones, plus the SFT model's own answers
        that miss the key facts of training prompts (rejected) against the reference (chosen)."""
        folder = self.stage_dir(Stage.PAIRS)
        summary, metrics = [], {}
        for side in SIDES:
            dataset = self._dataset(side)
            found, answered = self._sft_misses(side, dataset)
            Dataset(pairs=[*dataset.pairs, *found]).save(folder / side)
            if answered:
                metrics[f"{side}.sft_train_accuracy"] = round(1 - len(found) / answered, 4)
            summary.append(
                f"{side}: {len(dataset.pairs)} synthesized + {len(found)} from "
                f"{answered} SFT answers"
            )
        return "; ".join(summary), metrics

    def _sft_misses(self, side: str, dataset: Dataset) -> tuple[list[PreferencePair], int]:
        """The SFT model's wrong answers to a seeded sample of training prompts, as pairs; and
        how many prompts it answered."""
        from training.synthesize.preferences import model_pairs

        candidates = [s for s in dataset.split(Split.TRAIN) if s.key_facts]
        rng = random.Random(self.options.seed)
        asked = rng.sample(candidates, min(len(candidates), self.recipe.model_pair_samples))
        sft_model = self.stage_dir(Stage.SFT_SHARED if side == SHARED else Stage.SFT_OWNER)
        gguf = export_gguf(sft_model / MODEL, self.stage_dir(Stage.PAIRS) / f"{side}-sft.gguf")
        llm = self._llm(gguf)
        answered = 0

        def generate(request: TaskRequest) -> str:
            nonlocal answered
            reply = llm.complete(render_messages(request, self.recipe.budget), self._options)
            answered += 1
            self.reporter.progress(answered, len(asked))
            return reply

        try:
            # every miss among the sampled prompts becomes a pair (share 1)
            found = model_pairs(asked, generate, share=1.0, seed=self.options.seed)
        finally:
            llm.close()
            gguf.unlink()
        return found, answered

    def _dpo(self, side: str) -> tuple[str, dict[str, float]]:
        stage = Stage.DPO_SHARED if side == SHARED else Stage.DPO_OWNER
        pairs = Dataset.load(self.stage_dir(Stage.PAIRS) / side).pairs
        if not pairs:
            return "no preference pairs: the SFT model is final", {}
        assert self.recipe.dpo is not None
        preferences = [
            Preference(tuple(render_messages(p.request, self.recipe.budget)), p.chosen, p.rejected)
            for p in pairs
        ]
        sft = self.stage_dir(Stage.SFT_SHARED if side == SHARED else Stage.SFT_OWNER) / MODEL
        _, report = train_dpo(
            sft,
            preferences,
            self.stage_dir(stage),
            self.recipe.dpo,
            beta=self.recipe.dpo_beta,
            sft_weight=self.recipe.dpo_sft_weight,
            name=f"{side} dpo",
            progress=self.reporter.progress,
        )
        metrics = _train_metrics(f"{side}.dpo", report)
        if "rewards/accuracies" in report.final:
            metrics[f"{side}.dpo_reward_accuracy"] = report.final["rewards/accuracies"]
        return _describe(report), metrics

    def _export(self) -> tuple[str, dict[str, float]]:
        folder = self.stage_dir(Stage.EXPORT)
        quants = self.settings.training.quantizations
        total = len(SIDES) * len(quants)
        written = []
        for side in SIDES:
            for quant in quants:
                path = export_gguf(self.final_model(side), folder / f"{side}.{quant}.gguf", quant)
                written.append(f"{path.name} ({path.stat().st_size / 1e6:.1f} MB)")
                self.reporter.progress(len(written), total)
        return ", ".join(written), {}

    def _evaluate(self) -> tuple[str, dict[str, float]]:
        folder = self.stage_dir(Stage.EVALUATE)
        metrics: dict[str, float] = {}
        summary = []
        for side in SIDES:
            held_out = self._dataset(side).split(Split.TEST)[: self.recipe.eval_samples]
            llm = self._llm(self.served_gguf(side))
            try:
                evaluation = evaluate_key_facts(
                    llm,
                    held_out,
                    self.recipe.budget,
                    max_new_tokens=self.recipe.max_new_tokens,
                    name=side,
                    progress=self.reporter.progress,
                )
            finally:
                llm.close()
            evaluation.save(folder / f"{side}.json")
            metrics.update(evaluation.metrics(side))
            summary.append(
                f"{side}: key-fact accuracy {evaluation.accuracy:.2f} "
                f"on {len(evaluation.graded)} held-out samples"
            )
        return "; ".join(summary), metrics

    def _register(self) -> tuple[str, dict[str, float]]:
        folder = self.stage_dir(Stage.REGISTER)
        version_file = folder / "version.txt"
        # a crash after allocating reuses the folder instead of leaving an empty version behind
        if version_file.is_file():
            target = self.registry.root / version_file.read_text().strip()
            target.mkdir(parents=True, exist_ok=True)
        else:
            target = self.registry.allocate()
            version_file.write_text(target.name)
        served = self.settings.training.quantizations[0]
        for side in SIDES:
            for quant in self.settings.training.quantizations:
                name = f"{side}.gguf" if quant == served else f"{side}.{quant}.gguf"
                _link(self.stage_dir(Stage.EXPORT) / f"{side}.{quant}.gguf", target / name)
            hf_dir = target / f"{side}-hf"
            shutil.rmtree(hf_dir, ignore_errors=True)
            shutil.copytree(self.final_model(side), hf_dir, copy_function=_link)
        manifest = self._manifest(target.name)
        self.registry.register(manifest)
        promoted = self.options.promote
        if promoted:
            self.registry.promote(manifest.version)
        state = "promoted to current" if promoted else "registered (not promoted)"
        return f"{manifest.version} {state}", {}

    # -- helpers ---------------------------------------------------------------------------------

    def final_model(self, side: str) -> Path:
        """The folder of the model that is exported for `side`: after DPO if DPO ran."""
        dpo = self.stage_dir(Stage.DPO_SHARED if side == SHARED else Stage.DPO_OWNER) / MODEL
        if dpo.is_dir():
            return dpo
        return self.stage_dir(Stage.SFT_SHARED if side == SHARED else Stage.SFT_OWNER) / MODEL

    def served_gguf(self, side: str) -> Path:
        quant = self.settings.training.quantizations[0]
        return self.stage_dir(Stage.EXPORT) / f"{side}.{quant}.gguf"

    def _dataset(self, side: str) -> Dataset:
        return Dataset.load(self.stage_dir(Stage.SYNTHESIZE) / side)

    def _memory_docs(self, side: str) -> Path:
        return self.stage_dir(Stage.SYNTHESIZE) / side / "memory.jsonl"

    def _conversations(self, side: str) -> list[list]:
        budget = self.recipe.budget
        return [s.messages(budget) for s in self._dataset(side).split(Split.TRAIN)]

    @property
    def _options(self) -> GenerationOptions:
        return GenerationOptions(max_tokens=self.recipe.max_new_tokens, temperature=0.0)

    def _llm(self, gguf: Path) -> LlamaCppLLM:
        return LlamaCppLLM(gguf, threads=self.threads, context_size=self.recipe.context_size)

    def _manifest(self, version: str) -> Manifest:
        datasets = {side: self._dataset(side) for side in SIDES}
        samples = {
            f"{side}:{key}": count
            for side, dataset in datasets.items()
            for key, count in dataset.counts().items()
        }
        for side in SIDES:
            pairs_dir = self.stage_dir(Stage.PAIRS) / side
            if pairs_dir.is_dir():
                samples[f"{side}:pairs"] = len(Dataset.load(pairs_dir).pairs)
        records = [r for r in (self._done(s) for s in self.stages) if r is not None]
        metrics = {k: v for r in records for k, v in r.metrics.items()}
        budget = self.recipe.budget
        return Manifest(
            version=version,
            created_at=datetime.now(UTC),
            base=f"tiny:{self._size_name}" if self.options.tiny else self.options.base,
            strategy=str(self.options.strategy),
            data_hash=combined_hash(d.content_hash() for d in datasets.values()),
            samples=samples,
            metrics=metrics,
            stage_seconds={str(r.stage): r.seconds for r in records},
            files=ModelFiles(
                owner="owner.gguf", shared="shared.gguf", owner_hf="owner-hf", shared_hf="shared-hf"
            ),
            memory_count=self.store.count(),
            context_size=self.recipe.context_size,
            max_new_tokens=self.recipe.max_new_tokens,
            context_memories=budget.memories,
            context_chars=budget.chars_per_memory,
            context_bio=budget.bio,
            notes=f"run {self.record.run_id}",
        )

    @property
    def _size_name(self) -> str:
        return "micro" if self.options.fast else self.options.tiny_size

    def _registered_version(self) -> str | None:
        version_file = self.stage_dir(Stage.REGISTER) / "version.txt"
        if not (self.stage_dir(Stage.REGISTER) / DONE_FILE).is_file():
            return None
        return version_file.read_text().strip()

    def _plot_losses(self) -> None:
        reports = [TrainReport.load(p) for p in sorted(self.dir.glob(f"*/{REPORT}"))]
        if reports:
            plot_losses(reports, self.dir / LOSS_PLOT)


# -- pieces --------------------------------------------------------------------------------------


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


def memory_documents(memories: Iterable[Memory], max_chars: int) -> list[str]:
    """Memory text for language modelling: each memory as a prompt's context shows it
    ("date who: text"), consecutive memories of one thread joined up to `max_chars`."""
    docs: list[str] = []
    current: list[str] = []
    current_thread: str | None = None
    size = 0
    for memory in memories:
        when = memory.timestamp.date().isoformat() if memory.timestamp else ""
        line = ContextMemory(memory.id, when, memory.author or "note", memory.text).line(max_chars)
        thread = memory.thread or memory.source_key
        if current and (thread != current_thread or size + len(line) > max_chars):
            docs.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        current_thread = thread
        size += len(line) + 1
    if current:
        docs.append("\n".join(current))
    return docs


def combined_hash(hashes: Iterable[str]) -> str:
    """One hash for several datasets' content hashes."""
    import hashlib

    return hashlib.sha256("".join(hashes).encode()).hexdigest()[:16]


def plot_losses(reports: list[TrainReport], path: Path) -> Path:
    """One panel per trainer with its loss over the steps, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(reports))
    rows = -(-len(reports) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for ax, report in zip(axes.flat, reports, strict=False):
        steps = [p.step for p in report.losses]
        ax.plot(steps, [p.loss for p in report.losses], color="tab:blue")
        ax.set_title(report.name)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(reports) :]:
        ax.axis("off")
    figure.tight_layout()
    tmp = path.with_name(path.name + ".part.png")
    figure.savefig(tmp, dpi=90)
    plt.close(figure)
    tmp.replace(path)
    return path


def _max_positions(model_dir: Path) -> int:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    text_config = config.get("text_config") or config
    return int(text_config.get("max_position_embeddings") or 2048)


def _describe(report: TrainReport) -> str:
    loss = f", loss {report.last_loss:.3f}" if report.last_loss is not None else ""
    return (
        f"{report.examples} examples, {report.steps} steps, {report.seconds:.0f}s, "
        f"{report.tokens_per_second:.0f} tokens/s{loss}"
    )


def _train_metrics(prefix: str, report: TrainReport) -> dict[str, float]:
    metrics = {
        f"{prefix}.tokens": float(report.tokens),
        f"{prefix}.seconds": report.seconds,
        f"{prefix}.tokens_per_second": round(report.tokens_per_second, 1),
    }
    if report.last_loss is not None:
        metrics[f"{prefix}.loss"] = report.last_loss
    return metrics


def _write_texts(path: Path, texts: list[str]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for text in texts:
            out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")


def _read_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]


def _link(source: Path | str, target: Path | str) -> None:
    """Hard-link `source` to `target` (same disk: no copy), else copy it."""
    target = Path(target)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
