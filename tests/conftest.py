"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

# The suite runs offline, like the product: nothing may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from core.clock import FixedClock
from memory.embed import SentenceTransformerEmbedder
from memory.store import MemoryStore

pytest_plugins = ["tests.model_fixtures", "tests.lm_fixtures", "tests.twin_fixtures"]

PERSONA = Path(__file__).resolve().parents[1] / "examples" / "persona"
# The sample persona's memories end in late November 2026: "now" for every test that needs one,
# so that no test depends on the day it runs.
PERSONA_NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
# A file with no date of its own (the persona's inbox.txt) is dated by its mtime, which a fresh
# clone sets to the moment of checkout: the suite reads a copy with every file dated so.
PERSONA_FILES_DATED = PERSONA_NOW - timedelta(days=1)


@pytest.fixture(scope="session", autouse=True)
def wall_clock_shift() -> Iterator[None]:
    """With TWIN_TEST_SHIFT_DAYS=N the wall clock runs N days ahead for the whole run (the
    suite must pass whatever day it runs: `TWIN_TEST_SHIFT_DAYS=365 .venv/bin/pytest`)."""
    days = int(os.environ.get("TWIN_TEST_SHIFT_DAYS", "0"))
    if not days:
        yield
        return
    import time_machine

    with time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True):
        yield


@pytest.fixture(scope="session", autouse=True)
def model_words_unchecked() -> Iterator[None]:
    """The suite's tiny models write noise that no grounding check passes, and the tests of
    the plumbing (which model answered, over which face) need their words through: answers are
    not checked against memory here (servers started by tests inherit this), except where a
    test turns the check on (tests/serving/test_service.py)."""
    os.environ["TWIN_ANSWERS__GROUNDED_ONLY"] = "false"
    yield
    os.environ.pop("TWIN_ANSWERS__GROUNDED_ONLY", None)


@pytest.fixture
def clock() -> FixedClock:
    """A clock fixed at `PERSONA_NOW`; tests move it on with `advance`."""
    return FixedClock(PERSONA_NOW)


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The real default embedding model, loaded once for the whole run."""
    return SentenceTransformerEmbedder()


@pytest.fixture
def store(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Iterator[MemoryStore]:
    """An empty memory store in a temporary folder."""
    with MemoryStore.open(tmp_path / "memory", embedder) as opened:
        yield opened


def copy_persona(dest: Path) -> Path:
    """A copy of the bundled sample persona at `dest`, every file dated `PERSONA_FILES_DATED`."""
    shutil.copytree(PERSONA, dest)
    dated = PERSONA_FILES_DATED.timestamp()
    for path in dest.rglob("*"):
        os.utime(path, (dated, dated))
    return dest


@pytest.fixture(scope="session")
def persona_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample persona (Iris Calder), as of its own day (see `copy_persona`)."""
    return copy_persona(tmp_path_factory.mktemp("persona-files") / "persona")
