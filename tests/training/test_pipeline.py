"""`twin train` end to end on hand-made data, with a tiny random Qwen2 standing in for the
pretrained base: stages, adapters, registry, serving, resume, privacy of the shared model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.clock import FixedClock
from lm.base import GenerationOptions
from lm.hf_transformers import TransformersLLM
from memory.embed import SentenceTransformerEmbedder
from memory.models import SourceRef, Visibility
from memory.store import MemoryStore
from serving.answerers import TwinModels
from tests.conftest import PERSONA_NOW
from tests.training.handmade import FACTS, PRIVATE_WORD, HandmadeData, add_memories
from training.lora import ModelStack
from training.pipeline import (
    LOG_FILE,
    LOSS_PLOT,
    PipelineError,
    PrivacyViolation,
    RunResult,
    Stage,
    TrainingRun,
)
from training.pipeline.artifacts import RunFolder
from training.pipeline.stages import worse_than_base
from training.recipe import RunOptions, fast_recipe
from training.sft import TrainReport
from training.synthesize.samples import Split
from twin.config import Settings, load_settings
from twin.privacy import AudienceKind, ModelSide
from twin.registry import ModelMetrics, ModelRegistry

# f32 is served (exact parity with transformers); q8_0 is its fallback
QUANTS = ["f32", "q8_0"]
# The smoke recipe with enough SFT epochs for the tiny random model's adapters to learn the
# hand-made facts (seconds on one thread).
_SMOKE = fast_recipe()
LEARNING = replace(
    _SMOKE,
    sft=replace(_SMOKE.sft, epochs=24, learning_rate=1e-2, lora=replace(_SMOKE.sft.lora, r=8)),
    sft_owner=replace(
        _SMOKE.sft_owner, epochs=24, learning_rate=1e-2, lora=replace(_SMOKE.sft.lora, r=8)
    ),
    max_new_tokens=16,
    eval_samples=None,
)
CLOCK = FixedClock(PERSONA_NOW)


@dataclass
class Trained:
    settings: Settings
    store: MemoryStore
    run: TrainingRun
    result: RunResult


def make_home(root: Path, embedder: SentenceTransformerEmbedder) -> tuple[Settings, MemoryStore]:
    settings = load_settings(root, training={"quantizations": QUANTS})
    store = MemoryStore.open(settings.paths.memory_dir, embedder)
    add_memories(store)
    return settings, store


def options(base: Path, **changes: object) -> RunOptions:
    return replace(RunOptions(base=str(base), fast=True, threads=1), **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: SentenceTransformerEmbedder,
    tiny_qwen2_dir: Path,
) -> Iterator[Trained]:
    """One run of the whole pipeline on the hand-made memories."""
    settings, store = make_home(tmp_path_factory.mktemp("home"), embedder)
    run = TrainingRun.create(
        settings, store, options(tiny_qwen2_dir), data=HandmadeData(), recipe=LEARNING, clock=CLOCK
    )
    result = run.run()
    yield Trained(settings, store, run, result)
    store.close()


def test_every_stage_runs_once_and_leaves_its_record(trained: Trained) -> None:
    stages = [r.stage for r in trained.result.stages]
    assert stages == list(Stage)
    assert not any(r.resumed for r in trained.result.stages)
    for stage in Stage:
        assert (trained.run.stage_dir(stage) / "done.json").is_file(), stage
    summaries = {r.stage: r.summary for r in trained.result.stages}
    assert "shared: 16 train, 2 test, 4 pairs" in summaries[Stage.SYNTHESIZE]
    assert "owner: 24 train, 3 test, 6 pairs" in summaries[Stage.SYNTHESIZE]
    log = (trained.run.dir / LOG_FILE).read_text()
    assert "shared sft:" in log and "owner dpo:" in log
    assert (trained.run.dir / LOSS_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_stage_leaves_an_adapter_not_a_model(trained: Trained) -> None:
    for stage in (Stage.SFT_SHARED, Stage.SFT_OWNER, Stage.DPO_SHARED, Stage.DPO_OWNER):
        folder = trained.run.stage_dir(stage)
        assert (folder / "adapter" / "adapter_config.json").is_file(), stage
        assert not list(folder.rglob("model.safetensors")), stage
    folder = RunFolder(trained.run.dir)
    owner = folder.final_stack(trained.run.record.base_dir, ModelSide.OWNER)
    # the owner's model is the shared SFT, then its own SFT, then its DPO
    assert [a.parent.name for a in owner.adapters] == ["sft-shared", "sft-owner", "dpo-owner"]
    # the exported files moved into the registry: the run keeps no second copy
    assert not list(trained.run.stage_dir(Stage.EXPORT).glob("*.gguf"))


def test_run_is_registered_promoted_and_described(trained: Trained) -> None:
    registry = ModelRegistry(trained.settings.paths.models_dir)
    assert trained.result.version == "v0001" and trained.result.promoted
    manifest = registry.current()
    assert manifest is not None and manifest.version == "v0001"
    assert manifest.created_at == PERSONA_NOW
    assert manifest.base == str(trained.run.record.base_dir)
    assert manifest.samples["shared:train:memory_qa"] == 16
    assert manifest.samples["owner:test:memory_qa"] == 3
    assert manifest.memory_count == len(FACTS)
    assert set(manifest.stage_seconds) == {str(s) for s in Stage if s != Stage.REGISTER}
    owner = manifest.metric(ModelSide.OWNER)
    assert owner.key_fact_accuracy is not None and 0.0 <= owner.key_fact_accuracy <= 1.0
    assert owner.train_samples == 24 and owner.dpo_pairs == 3
    assert owner.held_out_reward_accuracy is not None
    assert (manifest.metric(ModelSide.SHARED).sft_tokens_per_second or 0) > 0
    # serving is told how the model was trained to be prompted
    recipe = trained.run.recipe
    assert manifest.context_size == recipe.context_size
    assert manifest.max_new_tokens == recipe.max_new_tokens
    tokenizer = ModelStack(trained.run.record.base_dir).tokenizer()
    trained_replies = [s for side in ModelSide for s in trained.run.folder.dataset(side).samples]
    for kind in {s.request.kind for s in trained_replies}:
        lengths = [
            len(tokenizer.encode(s.reply, add_special_tokens=False))
            for s in trained_replies
            if s.request.kind == kind
        ]
        assert manifest.longest_replies[kind] == max(lengths)
    assert manifest.context_memories == recipe.budget.memories
    assert manifest.context_chars == recipe.budget.chars_per_memory
    folder = registry.folder(manifest)
    for side in ModelSide:
        files = manifest.files(side)
        assert files.ggufs == [f"{side}.f32.gguf", f"{side}.q8_0.gguf"]
        for name in files.ggufs:
            assert (folder / name).stat().st_mode & 0o222 == 0, "registered files are read-only"
        for adapter in files.adapters:
            assert (folder / adapter / "adapter_config.json").is_file()


def test_served_models_answer_per_audience_as_transformers_does(
    trained: Trained, tmp_path: Path
) -> None:
    registry = ModelRegistry(trained.settings.paths.models_dir)
    models = TwinModels(registry, threads=1)
    budget = trained.run.recipe.budget
    generation = GenerationOptions(max_tokens=16, temperature=0.0)
    folder = RunFolder(trained.run.dir)
    try:
        for kind, side in (
            (AudienceKind.OWNER, ModelSide.OWNER),
            (AudienceKind.FRIEND, ModelSide.SHARED),
        ):
            served = models.for_audience(kind)
            assert served is not None and served.label == f"v0001/{side}"
            assert served.budget == budget
            merged = folder.final_stack(trained.run.record.base_dir, side)
            reference = TransformersLLM(merged.save_merged(tmp_path / str(side)))
            for sample in folder.dataset(side).split(Split.TEST):
                prompt = sample.messages(budget)[:-1]
                said = served.llm.complete(prompt, generation)
                # a random base emits byte tokens that are no valid UTF-8 on their own:
                # transformers shows them as U+FFFD, llama.cpp leaves them out
                expected = reference.complete(prompt, generation).replace("\ufffd", "")
                assert said.replace("\ufffd", "") == expected, (side, sample.id)
    finally:
        models.close()


def test_the_adapters_learned_and_were_evaluated(trained: Trained) -> None:
    """A random two-layer stand-in cannot generalise to new phrasings (the packaged base's own
    test does that); its adapters must still fit the training replies."""
    for stage in (Stage.SFT_SHARED, Stage.SFT_OWNER):
        report = TrainReport.load(trained.run.stage_dir(stage) / "report.json")
        assert report.losses[-1].loss < report.losses[0].loss / 3, stage
    evaluation = json.loads((trained.run.stage_dir(Stage.EVALUATE) / "owner.json").read_text())
    assert {g["question"] for g in evaluation["graded"]} == {f.questions[-1] for f in FACTS}


# -- privacy ---------------------------------------------------------------------------------


def test_shared_model_never_sees_a_private_memory(trained: Trained) -> None:
    private = next(f for f in FACTS if PRIVATE_WORD in f.text)
    shared = RunFolder(trained.run.dir).dataset_dir(ModelSide.SHARED)
    owner = RunFolder(trained.run.dir).dataset_dir(ModelSide.OWNER)
    texts = [p.read_text() for p in shared.iterdir()]
    assert texts and not any(PRIVATE_WORD in t or private.key_fact in t for t in texts)
    # the owner's data does hold it, so the check above can see it when it is there
    owner_text = "".join(p.read_text() for p in owner.iterdir())
    assert PRIVATE_WORD in owner_text and private.key_fact in owner_text


def test_shared_data_citing_a_private_memory_is_refused(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, tiny_qwen2_dir: Path
) -> None:
    settings, store = make_home(tmp_path, embedder)
    with store:
        run = TrainingRun.create(
            settings, store, options(tiny_qwen2_dir), data=HandmadeData(leak=True)
        )
        with pytest.raises(PrivacyViolation, match="friends may not see"):
            run.run()
        assert not (run.stage_dir(Stage.SYNTHESIZE) / "shared").exists()
        assert not (run.stage_dir(Stage.SYNTHESIZE) / "done.json").exists()


PLANTED = (
    ("I adopted a rescue greyhound called Biscuit in May 2024.", Visibility.FRIENDS),
    ("Orchestra rehearsal is every Wednesday at 19h in the church in Graça.", Visibility.FRIENDS),
    ("Tomás and I go bouldering at Vertigo on Tuesday and Thursday evenings.", Visibility.FRIENDS),
    ("My sister Maya teaches at a primary school in Glasgow since 2019.", Visibility.PUBLIC),
    (
        "The Zanzibarite vault code is 7781; the spare key is with Helena Quarry.",
        Visibility.PRIVATE,
    ),
    (
        "Final Zanzibarite interview in Monterey on 17 December 2026. Nobody knows.",
        Visibility.PRIVATE,
    ),
)


def test_synthesized_data_keeps_private_memories_from_the_shared_model(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, tiny_qwen2_dir: Path
) -> None:
    """With the real synthesizer: a private fact planted in memory reaches the owner's data and
    nothing the shared model is made from (samples, held-out samples, pairs)."""
    settings = load_settings(tmp_path, owner={"name": "Iris Calder"})
    source = SourceRef(key="notes:planted", kind="notes", name="Planted notes")
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        for i, (text, visibility) in enumerate(PLANTED):
            store.add(
                text,
                source=source,
                author="Iris Calder",
                visibility=visibility,
                timestamp=datetime(2026, 1, 1 + i, tzinfo=UTC),
            )
        recipe = replace(fast_recipe(), train_samples=80, owner_samples=80)
        run = TrainingRun.create(settings, store, options(tiny_qwen2_dir), recipe=recipe)
        run.run(stop_after=Stage.SYNTHESIZE)
    folder = RunFolder(run.dir)
    owner = "".join(p.read_text() for p in folder.dataset_dir(ModelSide.OWNER).iterdir())
    assert "7781" in owner and "Monterey" in owner
    shared = [p.read_text() for p in folder.dataset_dir(ModelSide.SHARED).iterdir()]
    assert shared
    for text in shared:
        for secret in (PRIVATE_WORD, "7781", "Helena Quarry", "Monterey"):
            assert secret not in text, secret


# -- resume ----------------------------------------------------------------------------------


def test_a_crashed_run_resumes_where_it_stopped(
    tmp_path: Path,
    embedder: SentenceTransformerEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    tiny_qwen2_dir: Path,
) -> None:
    settings, store = make_home(tmp_path, embedder)
    with store:
        run = TrainingRun.create(settings, store, options(tiny_qwen2_dir), data=HandmadeData())

        def power_cut(*args: object, **kwargs: object) -> None:
            raise RuntimeError("power cut")

        monkeypatch.setattr("training.pipeline.stages.train_dpo", power_cut)
        with pytest.raises(RuntimeError, match="power cut"):
            run.run()
        finished = [Stage.SYNTHESIZE, Stage.SFT_SHARED, Stage.SFT_OWNER]
        records = {s: (run.stage_dir(s) / "done.json").read_bytes() for s in finished}
        adapter = run.stage_dir(Stage.SFT_OWNER) / "adapter" / "adapter_model.safetensors"
        weights = adapter.read_bytes()
        assert not (run.stage_dir(Stage.DPO_SHARED) / "done.json").exists()
        assert "power cut" in (run.dir / LOG_FILE).read_text()
        monkeypatch.undo()

        resumed = TrainingRun.resume(settings, store, run.record.run_id, data=HandmadeData())
        assert resumed.recipe == run.recipe
        result = resumed.run()
    by_stage = {r.stage: r for r in result.stages}
    assert all(by_stage[s].resumed for s in finished)
    assert not any(by_stage[s].resumed for s in set(Stage) - set(finished))
    for stage, record in records.items():
        assert (run.stage_dir(stage) / "done.json").read_bytes() == record
    assert adapter.read_bytes() == weights
    assert result.version == "v0001" and result.promoted


def test_resuming_an_unknown_run_names_the_known_ones(trained: Trained) -> None:
    with pytest.raises(
        PipelineError, match=rf"no training run 'nope'.*{trained.run.record.run_id}"
    ):
        TrainingRun.resume(trained.settings, trained.store, "nope")


def test_no_promote_registers_without_serving(trained: Trained, tiny_qwen2_dir: Path) -> None:
    registry = ModelRegistry(trained.settings.paths.models_dir)
    second = TrainingRun.create(
        trained.settings,
        trained.store,
        options(tiny_qwen2_dir, promote=False),
        data=HandmadeData(),
    )
    result = second.run()
    assert (result.version, result.promoted) == ("v0002", False)
    assert registry.current_version() == "v0001"
    assert [m.version for m in registry.versions()] == ["v0001", "v0002"]
    assert registry.manifest("v0002").notes == f"run {second.record.run_id}"
    assert registry.manifest("v0002").run_id == second.record.run_id


def test_a_full_run_is_served_only_when_it_beats_the_untuned_base(
    trained: Trained, tiny_qwen2_dir: Path
) -> None:
    registry = ModelRegistry(trained.settings.paths.models_dir)
    before = registry.current_version()
    run = TrainingRun.create(
        trained.settings,
        trained.store,
        options(tiny_qwen2_dir, fast=False),
        data=HandmadeData(),
        recipe=LEARNING,
        clock=CLOCK,
    )
    result = run.run()
    for side in ModelSide:
        measured = result.metrics[side]
        assert measured.base_key_fact_accuracy is not None, side
        # the gate's pairs: each side's lone wins cannot exceed its own right answers
        graded = measured.key_fact_graded or 0
        assert measured.base_only_right is not None and measured.model_only_right is not None
        assert measured.base_only_right <= round(measured.base_key_fact_accuracy * graded)
        assert measured.model_only_right <= round((measured.key_fact_accuracy or 0) * graded)
        assert registry.manifest(result.version or "").metric(side) == measured
    evaluated = run.stage_dir(Stage.EVALUATE)
    assert {p.name for p in evaluated.iterdir()} == {
        "done.json",
        *(f"{side}.json" for side in ModelSide),
        *(f"base-{side}.json" for side in ModelSide),
    }, "the base's GGUF is not kept"
    reason = worse_than_base(result.metrics)
    assert result.promoted == (reason is None)
    if reason:
        assert registry.current_version() == before
        assert reason in run.folder.done(Stage.REGISTER).summary


def test_a_run_worse_than_its_base_is_registered_but_not_served(
    trained: Trained, tiny_qwen2_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(trained.settings.paths.models_dir)
    before = registry.current_version()
    reason = "the owner model is right on 0% of its held-out samples, the untuned base on 50%"
    monkeypatch.setattr("training.pipeline.stages.worse_than_base", lambda metrics: reason)
    run = TrainingRun.create(
        trained.settings, trained.store, options(tiny_qwen2_dir), data=HandmadeData(), clock=CLOCK
    )
    result = run.run()
    assert result.version is not None and not result.promoted
    assert registry.current_version() == before
    assert result.version in [m.version for m in registry.versions()]
    assert run.folder.done(Stage.REGISTER).summary == (
        f"{result.version} registered, not promoted: {reason}"
    )


def test_a_model_worse_than_its_base_is_named() -> None:
    better = ModelMetrics(key_fact_accuracy=0.5, base_key_fact_accuracy=0.25)
    level = ModelMetrics(key_fact_accuracy=0.25, base_key_fact_accuracy=0.25)
    worse = ModelMetrics(key_fact_accuracy=0.0, base_key_fact_accuracy=0.4)
    unmeasured = ModelMetrics(key_fact_accuracy=0.0)
    assert worse_than_base({ModelSide.SHARED: better, ModelSide.OWNER: level}) is None
    assert worse_than_base({ModelSide.SHARED: unmeasured, ModelSide.OWNER: level}) is None
    assert worse_than_base({ModelSide.SHARED: better, ModelSide.OWNER: worse}) == (
        "the owner model is right on 0% of its held-out samples, the untuned base on 40%"
    )


def test_the_gate_holds_back_a_real_loss_not_one_sample_in_a_dozen() -> None:
    def measured(base_only: int, model_only: int, graded: int = 12) -> ModelMetrics:
        both = 1
        return ModelMetrics(
            key_fact_accuracy=(both + model_only) / graded,
            base_key_fact_accuracy=(both + base_only) / graded,
            base_only_right=base_only,
            model_only_right=model_only,
        )

    level = ModelMetrics(key_fact_accuracy=0.25, base_key_fact_accuracy=0.25)
    # one held-out sample the base got and the model missed: chance, served
    assert worse_than_base({ModelSide.SHARED: measured(1, 0), ModelSide.OWNER: level}) is None
    assert worse_than_base({ModelSide.SHARED: measured(5, 2), ModelSide.OWNER: level}) is None
    # four the base got and the model missed, none the other way: held back (p = 1/16)
    assert worse_than_base({ModelSide.SHARED: measured(4, 0), ModelSide.OWNER: level}) == (
        "the shared model is right on 8% of its held-out samples, the untuned base on 42%"
    )
    assert worse_than_base({ModelSide.SHARED: measured(8, 2), ModelSide.OWNER: level})


def test_a_missing_base_fails_before_any_work(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    settings, store = make_home(tmp_path, embedder)
    with store, pytest.raises(PipelineError, match="not in the local Hugging Face cache"):
        TrainingRun.create(settings, store, RunOptions(base="nobody-here/no-such-model", fast=True))
    assert not settings.paths.runs_dir.exists() or not any(settings.paths.runs_dir.iterdir())
