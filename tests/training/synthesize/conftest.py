"""Stores for the synthesis tests: a small hand-made one, and the sample persona with its L1.

The small store is a few notes and one chat of an invented owner (Nora), with one private
secret ("Halvorsen"), built once per module. The persona is copied from the session's ingested
template, so building its profile here leaves the template as it was.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.clock import FixedClock
from lm.base import ChatLLM, ChatMessage, GenerationOptions
from memory.embed import SentenceTransformerEmbedder
from memory.models import Kind, MemoryDraft, ParsedSource, SourceRef, Visibility
from memory.profile import Profile, ProfileBuilder
from memory.store import MemoryStore
from tests.conftest import PERSONA_NOW
from training.synthesize import Fact
from twin.config import load_settings
from twin.privacy import Audience

OWNER = "Nora Lind"
SECRET = "Halvorsen"
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

NOTES = [
    (
        "Running › Race\nRan the Oslo half marathon on 14 September 2025 in 1:48:10.\n"
        "- Longest run: 21 km along the fjord on 30 August.",
        Visibility.FRIENDS,
    ),
    (
        "Food\n- Favourite dish: mushroom soup with rye bread.\n"
        "- Can't stand: liquorice. I have been vegetarian since 2019.",
        Visibility.FRIENDS,
    ),
    (
        "Work › Lab\nI work at the Bergen Marine Station, where I study kelp forests.\n"
        "Moved from Tromsø to Bergen in May 2022.",
        Visibility.FRIENDS,
    ),
    (
        "Job hunt\nSecretly applying to the Halvorsen Institute in Stavanger; "
        "the interview is on 3 December 2025.",
        Visibility.PRIVATE,
    ),
]
CHAT = [
    ("Ola", "when do you fly to Lisbon?"),
    (OWNER, "I fly to Lisbon on 12 October, back on the 19th"),
    ("Ola", "nice. still doing the choir on Mondays?"),
    (OWNER, "Every Monday at 19:00 in the old church in Nordnes"),
    ("Ola", "who's minding the cat?"),
    (OWNER, "Kari is minding Pepper while I'm away"),
]


def small_sources() -> list[tuple[ParsedSource, Visibility]]:
    """The hand-made memories, as sources to ingest (each with its visibility)."""
    sources = []
    for i, (text, visibility) in enumerate(NOTES):
        ref = SourceRef(key=f"notes:{i}", kind="notes", name=f"note {i}")
        draft = MemoryDraft(
            text=text,
            kind=Kind.NOTE,
            source_id=str(i),
            timestamp=START + timedelta(days=30 * i),
            thread=f"notes:{i}",
            is_owner=True,
            visibility=visibility,
        )
        sources.append((ParsedSource(ref, [draft]), visibility))
    ref = SourceRef(key="chat:ola", kind="telegram", name="Ola")
    drafts = [
        MemoryDraft(
            text=text,
            kind=Kind.CHAT,
            source_id=f"m{i}",
            author=who,
            timestamp=START + timedelta(days=200, minutes=3 * i),
            thread="chat:ola",
            is_owner=who == OWNER,
            visibility=Visibility.FRIENDS,
        )
        for i, (who, text) in enumerate(CHAT)
    ]
    sources.append((ParsedSource(ref, drafts), Visibility.FRIENDS))
    return sources


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Embedding many short questions is fastest on one thread on a shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small_store(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Iterator[MemoryStore]:
    """The hand-made store (read only: tests must not add to it)."""
    with MemoryStore.open(tmp_path_factory.mktemp("small") / "memory", embedder) as store:
        for parsed, visibility in small_sources():
            store.ingest(parsed, visibility=visibility)
        yield store


@pytest.fixture(scope="module")
def persona_store(
    tmp_path_factory: pytest.TempPathFactory,
    persona_home_template: Path,
    embedder: SentenceTransformerEmbedder,
) -> Iterator[MemoryStore]:
    """The persona's memory with its L1 profile built, in a copy of its own."""
    home = tmp_path_factory.mktemp("synthesis") / "home"
    shutil.copytree(persona_home_template, home)
    settings = load_settings(home)
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        ProfileBuilder(store, settings.owner.name, clock=FixedClock(PERSONA_NOW)).build()
        yield store


@pytest.fixture(scope="module")
def persona_facts(persona_store: MemoryStore) -> list[Fact]:
    """Every L1 fact, private ones included: synthesis must drop what an audience may not see."""
    view = Profile(persona_store).for_audience(Audience.owner().visibilities)
    return [Fact.from_view(f) for f in view.facts]


class ScriptedLLM(ChatLLM):
    """A language model whose reply is `answer(prompt)`: the real structured-output path
    (parsing, repair, retries) over answers the test decides."""

    def __init__(self, answer: Callable[[str], str]) -> None:
        super().__init__(GenerationOptions(), structured_attempts=2)
        self.answer = answer
        self.prompts: list[str] = []

    @property
    def name(self) -> str:
        return "scripted"

    def _complete(self, messages: list[ChatMessage], options: GenerationOptions) -> str:
        prompt = "\n".join(m.content for m in messages)
        self.prompts.append(prompt)
        return self.answer(prompt)

    def _stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        yield self._complete(messages, options)
