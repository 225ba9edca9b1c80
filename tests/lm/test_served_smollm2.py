"""End to end through a real OpenAI-compatible server: `python -m llama_cpp.server` serving the
packaged SmolLM2-135M-Instruct is the synthesizer (L1 writers, training data) and the judge of a
twin holding a slice of the sample persona.

SmolLM2 at 135M parameters writes poor text; what is checked is that every path through the
server completes, that what it leaves behind is valid, and that a server killed mid-run fails
the run at once. The slice is small (one note and a few messages, imported private so that
only the owner's scope is built) because the model runs on one thread: the module took 3¼
minutes with the machine's two cores shared by two other heavy jobs.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import app
from lm import ChatMessage, GenerationOptions, LLMUnavailable, OpenAICompatibleLLM
from memory.embed import SentenceTransformerEmbedder
from memory.models import Visibility
from memory.profile import Profile, Scope
from memory.store import MemoryStore
from tests.llm_servers import LlamaServer
from training.synthesize import Sample, SynthesisError, SynthesisLimits, synthesize
from training.synthesize.filters import judge_threshold
from twin.config import Settings, load_settings
from twin.ingest import parse_paths, store_parsed
from twin.privacy import Audience
from twin.tasks import CoTStrategy, PromptBudget

SLICE_NOTE = "notes/life/biscuit.md"
CHAT = "whatsapp/WhatsApp Chat with Sam.txt"
CHAT_LINES = 4  # the export's first line is WhatsApp's notice, then three messages
MODEL = "smollm2"
MAX_TOKENS = 384
BUDGET = PromptBudget(memories=3, chars_per_memory=200, bio=False)
BIOS = [("global", "third"), ("global", "first"), ("status", "third"), ("status", "first")]


@dataclass(frozen=True)
class ServedTwin:
    """A twin home whose synthesizer is the served model, and what its memory holds."""

    home: Path
    settings: Settings
    memory_ids: frozenset[str]

    def store(self, embedder: SentenceTransformerEmbedder) -> MemoryStore:
        return MemoryStore.open(self.settings.paths.memory_dir, embedder)


def served_llm(server: LlamaServer, **kwargs: object) -> OpenAICompatibleLLM:
    """A client of the served model, as the twin's settings below build it."""
    options = {
        "max_retries": 0,
        "defaults": GenerationOptions(max_tokens=MAX_TOKENS, temperature=0.0),
        **kwargs,
    }
    return OpenAICompatibleLLM(server.url, MODEL, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def served_twin(
    tmp_path_factory: pytest.TempPathFactory,
    persona_dir: Path,
    embedder: SentenceTransformerEmbedder,
    smollm2_server: LlamaServer,
) -> ServedTwin:
    """The slice imported as `twin ingest --visibility private` would (in-process, with the
    suite's embedder), and `[llm.synthesizer]` pointed at the server. No retries: the server
    is local, and a fact batch whose reply fails is asked again in halves anyway."""
    root = tmp_path_factory.mktemp("served")
    notes = root / "notes"
    notes.mkdir()
    shutil.copy(persona_dir / SLICE_NOTE, notes)
    chat = root / Path(CHAT).name
    lines = (persona_dir / CHAT).read_text(encoding="utf-8").splitlines()[:CHAT_LINES]
    chat.write_text("\n".join(lines) + "\n", encoding="utf-8")
    home = root / "home"
    home.mkdir()
    synthesizer = (
        f'\n[llm.synthesizer]\nbackend = "openai"\nbase_url = "{smollm2_server.url}"\n'
        f'model = "{MODEL}"\nmax_tokens = {MAX_TOKENS}\nmax_retries = 0\n'
    )
    (home / "twin.toml").write_text((persona_dir / "twin.toml").read_text() + synthesizer)
    settings = load_settings(home)
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        for item in parse_paths([chat, notes], settings):
            store_parsed(store, item, settings, ceiling=Visibility.PRIVATE)
        ids = frozenset(m.id for m in store.iter_memories())
    assert len(ids) == 8
    return ServedTwin(home, settings, ids)


@pytest.fixture(scope="module")
def offline_samples(served_twin: ServedTwin, embedder: SentenceTransformerEmbedder) -> list[Sample]:
    """A few samples of the slice made offline, for the judge to score."""
    with served_twin.store(embedder) as store:
        data = synthesize(
            store,
            audience=Audience.owner(),
            owner=served_twin.settings.owner.name,
            strategy=CoTStrategy.WEAK,
            budget=BUDGET,
            limits=SynthesisLimits(train_samples=6, pairs=0, held_out_pairs=0),
        )
    return data.samples[:3]


def test_profile_build_through_the_server_writes_a_valid_l1(
    served_twin: ServedTwin, embedder: SentenceTransformerEmbedder
) -> None:
    result = CliRunner().invoke(
        app, ["--home", str(served_twin.home), "profile", "build", "--full"]
    )
    assert result.exit_code == 0, result.output
    with served_twin.store(embedder) as store:
        view = Profile(store).for_scope(Scope.OWNER)
    writer = f"llm:openai:{MODEL}@"
    # facts cite memories of the slice, and only those
    assert view.facts
    for fact in view.facts:
        assert fact.extractor.startswith(writer)
        assert fact.sources and {m.id for m in fact.sources} <= served_twin.memory_ids
        assert fact.statement.strip() and fact.value.strip()
    # topics are named, and hold memories of the slice
    assert view.topics
    for topic in view.topics:
        assert topic.label.strip()
        assert set(topic.member_ids) <= served_twin.memory_ids
    # the four bios are written, by the served model
    for kind, person in BIOS:
        assert view.bio(kind, person).strip()
    assert all(bio.writer.startswith(writer) for bio in view.bios)


def test_training_data_through_the_server_is_valid_or_a_clear_error(
    served_twin: ServedTwin, embedder: SentenceTransformerEmbedder, smollm2_server: LlamaServer
) -> None:
    with served_twin.store(embedder) as store:
        try:
            data = synthesize(
                store,
                audience=Audience.owner(),
                owner=served_twin.settings.owner.name,
                strategy=CoTStrategy.WEAK,
                budget=BUDGET,
                synthesizer=served_llm(smollm2_server),
                limits=SynthesisLimits(
                    train_samples=8, pairs=0, held_out_pairs=0, llm_batch_memories=8
                ),
            )
        except SynthesisError as exc:
            # What SmolLM2-135M does with this slice: its one answer is cut off by max_tokens
            # or cites nothing it was shown. The run stops and says which, for which memories.
            message = str(exc)
            assert message.startswith("the synthesizer")
            assert "SynthesisBatch" in message or "no usable training data" in message
            assert all(mid in message for mid in served_twin.memory_ids) or "8 memories" in message
            return
    from_llm = [s for s in data.samples if s.origin == "llm"]
    assert from_llm  # else the run must have stopped with the error above
    for sample in from_llm:
        assert sample.support and set(sample.support) <= served_twin.memory_ids
        assert sample.reply.strip()


def test_the_served_judge_scores_samples(
    offline_samples: list[Sample], smollm2_server: LlamaServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert len(offline_samples) == 3
    with caplog.at_level(logging.WARNING):
        judged = judge_threshold(offline_samples, served_llm(smollm2_server), BUDGET, min_score=1)
    # every sample got a valid score (1 to 5: min_score=1 keeps all that were scored)
    assert [s.id for s in judged.kept] == [s.id for s in offline_samples]
    assert "could not score" not in caplog.text


@pytest.fixture
def doomed_server(smollm2_gguf: Path, tmp_path: Path) -> Iterator[LlamaServer]:
    """A server of its own, for a test to kill."""
    with LlamaServer(smollm2_gguf, tmp_path / "server.log", context_size=1024) as server:
        yield server


def test_a_server_killed_mid_run_fails_the_run_at_once(
    doomed_server: LlamaServer, offline_samples: list[Sample]
) -> None:
    # retries that would wait 1 + 2 + 4 s on a busy server
    llm = served_llm(doomed_server, max_retries=3, backoff=1.0)
    story = [ChatMessage("user", "Tell me a long story about a greyhound called Biscuit.")]
    pieces = llm.stream(story, GenerationOptions(max_tokens=400))
    assert next(pieces)
    doomed_server.kill()
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match=rf"{doomed_server.url}.*unreachable"):
        for _ in pieces:
            pass
    with pytest.raises(
        SynthesisError, match=rf"judge model is unavailable.*0 of 3.*{doomed_server.url}"
    ):
        judge_threshold(offline_samples, llm, BUDGET)
    assert time.monotonic() - started < 1.0
