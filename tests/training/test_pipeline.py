"""`twin train` end to end on hand-made data: stages, registry, serving, resume, privacy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
from llama_cpp import Llama
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

from memory.embed import SentenceTransformerEmbedder
from memory.models import SourceRef, Visibility
from memory.store import MemoryStore
from tests.model_fixtures import build_tiny_model
from tests.training.handmade import (
    FACTS,
    OWNER_NAME,
    PRIVATE_WORD,
    HandmadeData,
    add_memories,
)
from training.pipeline import (
    LOG_FILE,
    LOSS_PLOT,
    PipelineError,
    PrivacyViolation,
    RunResult,
    Stage,
    TrainingRun,
    resolve_base,
)
from training.recipe import RunOptions, fast_recipe
from training.synthesize.samples import Dataset, Split
from training.tiny import load_tokenizer, train_tokenizer
from twin.config import Settings, load_settings
from twin.llm.base import ChatMessage, GenerationOptions
from twin.llm.hf_transformers import TransformersLLM
from twin.privacy import AudienceKind
from twin.registry import ModelRegistry
from twin.service import TwinModels
from twin.tasks import TaskKind, TaskRequest, render_messages

# f32 is served (exact parity with transformers); q8_0 is written as well
QUANTS = ["f32", "q8_0"]
FAST = RunOptions(fast=True, threads=1)
# The smoke recipe with enough SFT epochs for the micro model to learn the hand-made facts
# (about ten seconds on one thread).
_SMOKE = fast_recipe()
LEARNING = replace(
    _SMOKE,
    sft=replace(_SMOKE.sft, epochs=16, learning_rate=4e-3),
    sft_owner=replace(_SMOKE.sft_owner, epochs=16, learning_rate=4e-3),
    max_new_tokens=16,
)


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


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Iterator[Trained]:
    """One fast run of the whole pipeline on the hand-made memories."""
    settings, store = make_home(tmp_path_factory.mktemp("home"), embedder)
    run = TrainingRun.create(settings, store, FAST, data=HandmadeData(), recipe=LEARNING)
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
    assert "shared: 16 train, 2 test" in summaries[Stage.SYNTHESIZE]
    assert "owner: 24 train, 3 test" in summaries[Stage.SYNTHESIZE]
    log = (trained.run.dir / LOG_FILE).read_text()
    assert "shared sft:" in log and "owner dpo:" in log
    assert (trained.run.dir / LOSS_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_is_registered_promoted_and_described(trained: Trained) -> None:
    registry = ModelRegistry(trained.settings.paths.models_dir)
    assert trained.result.version == "v0001"
    assert trained.result.promoted
    manifest = registry.current()
    assert manifest is not None and manifest.version == "v0001"
    assert manifest.base == "tiny:micro"
    assert manifest.strategy == "strong"
    assert manifest.samples["shared:train:memory_qa"] == 16
    assert manifest.samples["owner:train:memory_qa"] == 24
    assert manifest.samples["owner:test:memory_qa"] == 3
    assert manifest.samples["owner:pairs"] >= 3
    assert manifest.memory_count == len(FACTS)
    assert len(manifest.data_hash) == 16
    # every stage but the registration itself, which writes the manifest
    assert set(manifest.stage_seconds) == {str(s) for s in Stage if s != Stage.REGISTER}
    assert 0.0 <= manifest.metrics["owner.key_fact_accuracy"] <= 1.0
    assert manifest.metrics["shared.sft.tokens_per_second"] > 0
    # serving is told how the model was trained to be prompted
    recipe = trained.run.recipe
    assert manifest.context_size == recipe.context_size
    assert manifest.max_new_tokens == recipe.max_new_tokens
    assert manifest.context_memories == recipe.budget.memories
    assert manifest.context_chars == recipe.budget.chars_per_memory
    assert manifest.context_bio is recipe.budget.bio
    folder = registry.root / "v0001"
    for name in ("owner.gguf", "shared.gguf", "owner.q8_0.gguf", "shared.q8_0.gguf"):
        assert (folder / name).stat().st_size > 10_000, name
    assert (folder / "owner-hf" / "model.safetensors").is_file()
    assert (folder / "shared-hf" / "tokenizer.json").is_file()


def test_served_models_load_per_audience_and_match_transformers(trained: Trained) -> None:
    registry = ModelRegistry(trained.settings.paths.models_dir)
    models = TwinModels(trained.settings, registry)
    budget = trained.run.recipe.budget
    options = GenerationOptions(max_tokens=16, temperature=0.0)
    try:
        owner = models.for_audience(AudienceKind.OWNER)
        friend = models.for_audience(AudienceKind.FRIEND)
        assert owner is not None and friend is not None
        assert owner.label == "v0001/owner" and friend.label == "v0001/shared"
        assert owner.version == friend.version == "v0001"
        assert owner.budget == budget
        for side, loaded in (("owner", owner), ("shared", friend)):
            held_out = Dataset.load(trained.run.stage_dir(Stage.SYNTHESIZE) / side)
            reference_llm = TransformersLLM(registry.root / "v0001" / f"{side}-hf")
            for sample in held_out.split(Split.TEST):
                prompt = sample.messages(budget)[:-1]
                served = loaded.llm.complete(prompt, options)
                assert served == reference_llm.complete(prompt, options), (side, sample.id)
                assert any(c.isalpha() for c in served), served
    finally:
        models.close()


def test_the_shared_model_learned_its_facts(trained: Trained) -> None:
    # held-out questions (phrased unlike any training question) about what friends may see
    assert trained.result.metrics["shared.key_fact_accuracy"] >= 0.5
    assert trained.result.metrics["shared.sft.loss"] < 2.0


def test_trained_model_is_what_the_run_exported(trained: Trained) -> None:
    # the owner model starts from the shared SFT model, then moves away from it
    shared = AutoModelForCausalLM.from_pretrained(trained.run.final_model("shared"))
    owner = AutoModelForCausalLM.from_pretrained(trained.run.final_model("owner"))
    assert trained.run.final_model("owner").parent.name == "dpo-owner"
    assert shared.config.vocab_size == owner.config.vocab_size
    assert not torch.equal(shared.model.embed_tokens.weight, owner.model.embed_tokens.weight)
    evaluation = json.loads((trained.run.stage_dir(Stage.EVALUATE) / "owner.json").read_text())
    assert len(evaluation["graded"]) == 3
    assert {g["question"] for g in evaluation["graded"]} == {f.questions[-1] for f in FACTS}


# -- privacy ---------------------------------------------------------------------------------


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json")]


def test_shared_model_never_sees_a_private_memory(trained: Trained) -> None:
    run = trained.run
    private = next(f for f in FACTS if PRIVATE_WORD in f.text)
    # the shared model's data: its dataset, its memory text, its preference pairs
    shared_files = [
        *_files_under(run.stage_dir(Stage.SYNTHESIZE) / "shared"),
        *_files_under(run.stage_dir(Stage.PAIRS) / "shared"),
    ]
    assert shared_files
    for path in shared_files:
        text = path.read_text()
        assert PRIVATE_WORD not in text, path
        assert private.key_fact not in text, path
    # the owner's data does hold it, so the check above can see it when it is there
    owner_text = "".join(
        p.read_text() for p in _files_under(run.stage_dir(Stage.SYNTHESIZE) / "owner")
    )
    assert PRIVATE_WORD in owner_text and private.key_fact in owner_text
    # the vocabulary is the shared data's: the private word is no token and takes several
    tokenizer = Tokenizer.from_file(str(run.stage_dir(Stage.TOKENIZER) / "tokenizer.json"))
    vocabulary = tokenizer.get_vocab()
    assert not any(PRIVATE_WORD.lower() in token.lower() for token in vocabulary)
    assert len(tokenizer.encode(f" {PRIVATE_WORD}", add_special_tokens=False).ids) > 2


def _answer_loss(model_dir: Path, prompt: list[ChatMessage], answer: str) -> float:
    """Mean cross-entropy of `answer` as the model's reply to `prompt`."""
    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    chat = [{"role": m.role, "content": m.content} for m in prompt]
    prompt_ids = tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([list(prompt_ids) + answer_ids])
    labels = ids.clone()
    labels[0, : len(prompt_ids)] = -100
    with torch.no_grad():
        return float(model(input_ids=ids, labels=labels).loss)


def test_the_private_fact_is_learned_by_the_owner_model_only(trained: Trained) -> None:
    """The planted private answer, asked with no memory in the prompt (what the weights hold):
    the owner's model has learned it, the shared model, which never saw it, finds it far less
    likely, and asked as a friend it does not say it."""
    private = next(f for f in FACTS if PRIVATE_WORD in f.text)
    budget = trained.run.recipe.budget
    request = TaskRequest(TaskKind.MEMORY_QA, OWNER_NAME, AudienceKind.OWNER, private.questions[0])
    prompt = render_messages(request, budget)
    owner = _answer_loss(trained.run.final_model("owner"), prompt, private.answer)
    shared = _answer_loss(trained.run.final_model("shared"), prompt, private.answer)
    assert owner < 0.5 * shared, (owner, shared)

    shared_llm = TransformersLLM(trained.run.final_model("shared"))
    options = GenerationOptions(max_tokens=24, temperature=0.0)
    for question in private.questions:
        asked = replace(request, audience=AudienceKind.FRIEND, text=question)
        assert private.key_fact not in shared_llm.complete(render_messages(asked, budget), options)


def test_a_tokenizer_trained_on_private_text_would_show_it(
    trained: Trained, tmp_path: Path
) -> None:
    """The vocabulary check above is sensitive: owner text puts the private word in it."""
    owner = Dataset.load(trained.run.stage_dir(Stage.SYNTHESIZE) / "owner")
    texts = [s.reply for s in owner.samples] + [s.request.text for s in owner.samples]
    texts += [c.text for s in owner.samples for c in s.request.context]
    folder = train_tokenizer(texts, tmp_path / "leaky", vocab_size=600)
    assert f"Ġ{PRIVATE_WORD}" in load_tokenizer(folder).get_vocab()


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
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    """With the real synthesizer: a private fact planted in memory reaches the owner's data
    and nothing the shared model or its tokenizer is made from."""
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
        run = TrainingRun.create(settings, store, FAST)
        run.run(stop_after=Stage.TOKENIZER)
    synthesized = run.stage_dir(Stage.SYNTHESIZE)
    # the owner's model reads all memory text, the private notes included
    owner = (synthesized / "owner" / "memory.jsonl").read_text()
    assert PRIVATE_WORD in owner and "7781" in owner and "Monterey" in owner
    shared = [*_files_under(synthesized / "shared")]
    assert shared
    for path in shared:
        text = path.read_text()
        for secret in (PRIVATE_WORD, "7781", "Helena Quarry", "Monterey"):
            assert secret not in text, (path, secret)
    assert "Biscuit" in (synthesized / "shared" / "memory.jsonl").read_text()
    vocabulary = Tokenizer.from_file(str(run.stage_dir(Stage.TOKENIZER) / "tokenizer.json"))
    assert not any(
        word in token.lower()
        for token in vocabulary.get_vocab()
        for word in ("zanzib", "monterey", "quarry", "7781")
    )


def test_shared_data_citing_a_private_memory_is_refused(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    settings, store = make_home(tmp_path, embedder)
    with store:
        run = TrainingRun.create(settings, store, FAST, data=HandmadeData(leak=True))
        with pytest.raises(PrivacyViolation, match="friends may not see"):
            run.run()
        assert not (run.stage_dir(Stage.SYNTHESIZE) / "shared").exists()
        assert not (run.stage_dir(Stage.SYNTHESIZE) / "done.json").exists()


# -- resume ----------------------------------------------------------------------------------


def test_a_crashed_run_resumes_where_it_stopped(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, store = make_home(tmp_path, embedder)
    with store:
        run = TrainingRun.create(settings, store, FAST, data=HandmadeData())

        def power_cut(*args: object, **kwargs: object) -> None:
            raise RuntimeError("power cut")

        monkeypatch.setattr("training.pipeline.train_dpo", power_cut)
        with pytest.raises(RuntimeError, match="power cut"):
            run.run()
        finished = [Stage.SYNTHESIZE, Stage.TOKENIZER, Stage.PRETRAIN, Stage.SFT_SHARED]
        finished += [Stage.SFT_OWNER, Stage.PAIRS]
        records = {s: (run.stage_dir(s) / "done.json").read_bytes() for s in finished}
        weights = (run.stage_dir(Stage.SFT_OWNER) / "model" / "model.safetensors").read_bytes()
        assert not (run.stage_dir(Stage.DPO_SHARED) / "done.json").exists()
        assert "power cut" in (run.dir / LOG_FILE).read_text()
        monkeypatch.undo()

        resumed = TrainingRun.resume(settings, store, run.record.run_id, data=HandmadeData())
        assert resumed.recipe == run.recipe
        result = resumed.run()
    by_stage = {r.stage: r for r in result.stages}
    assert all(by_stage[s].resumed for s in finished)
    assert not any(by_stage[s].resumed for s in set(Stage) - set(finished))
    # finished stages were not redone: their records and models are untouched
    for stage, record in records.items():
        assert (run.stage_dir(stage) / "done.json").read_bytes() == record
    model = run.stage_dir(Stage.SFT_OWNER) / "model" / "model.safetensors"
    assert model.read_bytes() == weights
    assert result.version == "v0001" and result.promoted


def test_resuming_an_unknown_run_names_the_known_ones(trained: Trained) -> None:
    with pytest.raises(
        PipelineError, match=rf"no training run 'nope'.*{trained.run.record.run_id}"
    ):
        TrainingRun.resume(trained.settings, trained.store, "nope")


def test_no_promote_registers_without_serving(trained: Trained) -> None:
    registry = ModelRegistry(trained.settings.paths.models_dir)
    options = RunOptions(fast=True, threads=1, promote=False)
    second = TrainingRun.create(trained.settings, trained.store, options, data=HandmadeData())
    result = second.run()
    assert (result.version, result.promoted) == ("v0002", False)
    assert registry.current_version() == "v0001"
    assert [m.version for m in registry.versions()] == ["v0001", "v0002"]
    assert registry.manifest("v0002").notes == f"run {second.record.run_id}"


# -- a pretrained base -------------------------------------------------------------------------


def test_lora_run_on_a_pretrained_base(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, tiny_tokenizer_dir: Path
) -> None:
    """The LoRA path end to end, with a tiny random Qwen2 folder standing in for a real base."""
    base = build_tiny_model(tmp_path / "base", tiny_tokenizer_dir, "qwen2")
    settings, store = make_home(tmp_path / "home", embedder)
    options = RunOptions(base=str(base), fast=True, threads=1)
    with store:
        run = TrainingRun.create(settings, store, options, data=HandmadeData())
        result = run.run()
    stages = [r.stage for r in result.stages]
    assert Stage.TOKENIZER not in stages and Stage.PRETRAIN not in stages
    for stage in (Stage.SFT_SHARED, Stage.SFT_OWNER, Stage.DPO_SHARED, Stage.DPO_OWNER):
        assert (run.stage_dir(stage) / "adapter" / "adapter_config.json").is_file(), stage
    manifest = ModelRegistry(settings.paths.models_dir).current()
    assert manifest is not None and manifest.base == str(base)
    served = ModelRegistry(settings.paths.models_dir).root / "v0001"
    # the base's tokenizer and chat template travel unchanged into the served model
    assert (served / "owner-hf" / "tokenizer.json").read_bytes() == (
        base / "tokenizer.json"
    ).read_bytes()
    assert manifest.context_size == 512  # the base's max_position_embeddings
    # llama.cpp continues the served model exactly as transformers does (token ids: a random
    # base says bytes that are no valid UTF-8 on their own)
    tokenizer = load_tokenizer(served / "owner-hf")
    rows = [{"role": "user", "content": "[message]\nWhat instrument do I play?"}]
    prompt = tokenizer.apply_chat_template(rows, add_generation_prompt=True, return_dict=False)
    model = AutoModelForCausalLM.from_pretrained(served / "owner-hf").eval()
    with torch.no_grad():
        output = model.generate(
            torch.tensor([prompt]), max_new_tokens=12, do_sample=False, eos_token_id=None
        )
    expected = output[0, len(prompt) :].tolist()
    llama = Llama(str(served / "owner.gguf"), n_ctx=512, n_threads=1, verbose=False)
    try:
        tokens = []
        for token in llama.generate(prompt, temp=0.0, top_k=1, reset=True):
            tokens.append(token)
            if len(tokens) == len(expected):
                break
    finally:
        llama.close()
    assert tokens == expected


def test_a_missing_hub_model_offline_is_a_clear_error(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    with pytest.raises(PipelineError, match=r"'nobody-here/no-such-model'.*hf download.*folder"):
        resolve_base("nobody-here/no-such-model")
    settings, store = make_home(tmp_path, embedder)
    options = RunOptions(base="nobody-here/no-such-model", fast=True, threads=1)
    with store, pytest.raises(PipelineError, match="not in the local Hugging Face cache"):
        TrainingRun.create(settings, store, options, data=HandmadeData())
    # it fails before doing any work
    assert not settings.paths.runs_dir.exists() or not any(settings.paths.runs_dir.iterdir())


def test_base_folder_must_hold_a_model(tmp_path: Path, tiny_qwen2_dir: Path) -> None:
    assert resolve_base(str(tiny_qwen2_dir)) == tiny_qwen2_dir
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipelineError, match=r"no config\.json"):
        resolve_base(str(tmp_path / "empty"))
    with pytest.raises(PipelineError, match="does not exist"):
        resolve_base(str(tmp_path / "missing"))
