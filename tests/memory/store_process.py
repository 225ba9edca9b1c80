"""A memory store in a process of its own, for tests of several processes sharing one home.

    python -m tests.memory.store_process <store folder> <flags folder> <write wait> <open at>

The child opens the store (at the Unix time `open at`, when it is not 0: several children then
open it at the same moment), says `{"ready": true}`, then runs the commands it reads on stdin, one
JSON object a line, answering each with one line of JSON. A command may stop the child on the
way, at one of the store's `WritePhase`s (the `on_phase` hook) or inside the embedder:

- `"pause_at": <phase or "embedding">`: create `<flags>/reached-<phase>` there and wait for
  `<flags>/release` to appear, holding whatever the write holds at that point;
- `"kill_at": <phase>`: SIGKILL itself there, as a crash or `kill -9` would.

`StoreProcess` is the parent's side. The data builders (`chat`, `note`, `document`) are shared by
the child and the tests, so both speak of the same memories.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from memory.embed import SentenceTransformerEmbedder
from memory.models import Kind, MemoryDraft, OwnerIdentity, ParsedSource, SourceRef
from memory.store import MemoryStore

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CHAT = SourceRef(key="telegram:chat:42", kind="telegram", name="Telegram: Tomás")
OWNER = OwnerIdentity(names=("Iris",))
# A child waits this long for the test to release it before it gives up (exit code 3).
PAUSE_LIMIT_S = 180.0


def chat(start: int, n: int) -> ParsedSource:
    """Messages start+1 … start+n of one chat, alternating between Iris and Tomás."""
    drafts = [
        MemoryDraft(
            text=f"message {i}: {'climbing at Vertigo' if i % 2 == 0 else 'see you at seven'}",
            kind=Kind.CHAT,
            source_id=str(i + 1),
            author="Iris" if i % 2 == 0 else "Tomás",
            timestamp=T0 + timedelta(minutes=i),
            thread=CHAT.key,
        )
        for i in range(start, start + n)
    ]
    return ParsedSource(source=CHAT, drafts=drafts)


def note(key: str, texts: list[str]) -> ParsedSource:
    """A notes source `notes:<key>` with one memory per text (source ids n1, n2, …)."""
    ref = SourceRef(key=f"notes:{key}", kind="notes", name=key)
    drafts = [
        MemoryDraft(text=text, kind=Kind.NOTE, source_id=f"n{i}") for i, text in enumerate(texts, 1)
    ]
    return ParsedSource(source=ref, drafts=drafts)


def document(chunks: list[str]) -> ParsedSource:
    """A note file whose chunks are named by `chunks`; importing it replaces its old version."""
    ref = SourceRef(key="notes:trip.md", kind="notes", name="trip.md")
    drafts = [
        MemoryDraft(text=f"Kyoto trip, part {c}: temples and tofu", kind=Kind.NOTE, source_id=c)
        for c in chunks
    ]
    return ParsedSource(source=ref, drafts=drafts, replaces_missing=True)


def parsed_from(command: dict[str, Any]) -> ParsedSource:
    if "chat" in command:
        start, n = command["chat"]
        return chat(start, n)
    if "note" in command:
        return note(command["note"], command["texts"])
    return document(command["document"])


class StoreProcess:
    """A child process holding a store open on `store_dir` (the parent's side)."""

    def __init__(
        self,
        store_dir: Path,
        flags: Path,
        write_wait: float = 60.0,
        *,
        open_at: float = 0.0,
        wait_ready: bool = True,
    ) -> None:
        flags.mkdir(parents=True, exist_ok=True)
        self.flags = flags
        self.stderr_path = flags / f"stderr-{time.monotonic_ns()}.txt"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        with self.stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.memory.store_process",
                    str(store_dir),
                    str(flags),
                    str(write_wait),
                    str(open_at),
                ],
                cwd=REPO,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        if wait_ready:
            self.ready()

    def ready(self) -> None:
        """Wait until the child has opened the store."""
        assert self.reply() == {"ready": True}

    def send(self, command: dict[str, Any]) -> None:
        """Start a command without waiting for its answer."""
        for flag in self.flags.glob("reached-*"):
            flag.unlink()
        (self.flags / "release").unlink(missing_ok=True)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float = 180.0) -> dict[str, Any]:
        """The answer to the command sent last."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise AssertionError(f"the store process gave no answer:\n{self.stderr()}")
        return json.loads(line)

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        self.send(command)
        return self.reply()

    def wait_until(self, phase: str, timeout: float = 180.0) -> None:
        """Wait until the child has reached `phase` (and paused there)."""
        deadline = time.monotonic() + timeout
        while not (self.flags / f"reached-{phase}").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the store process never reached {phase}:\n{self.stderr()}")
            time.sleep(0.05)

    def release(self) -> None:
        (self.flags / "release").touch()

    def killed(self, timeout: float = 180.0) -> int:
        """Wait for the child to die; its return code (-9 when it killed itself)."""
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- the child ---------------------------------------------------------------------------------


class _PausingEmbedder:
    """The real embedder, stopping once before its first batch when told to."""

    def __init__(self, inner: SentenceTransformerEmbedder, stop: Callable[[str], None]) -> None:
        self.inner = inner
        self.name = inner.name
        self.stop = stop

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        self.stop("embedding")
        return self.inner.embed(texts, progress)


class _Child:
    def __init__(self, store_dir: Path, flags: Path, write_wait: float) -> None:
        self.flags = flags
        self.command: dict[str, Any] = {}
        embedder = _PausingEmbedder(SentenceTransformerEmbedder(), self.stop)
        self.store = MemoryStore.open(store_dir, embedder, write_wait=write_wait)
        self.store.on_phase = lambda phase: self.stop(str(phase))

    def stop(self, point: str) -> None:
        if self.command.get("kill_at") == point:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.command.get("pause_at") == point:
            self.command = {**self.command, "pause_at": None}  # once per command
            (self.flags / f"reached-{point}").touch()
            deadline = time.monotonic() + PAUSE_LIMIT_S
            while not (self.flags / "release").exists():
                if time.monotonic() > deadline:
                    sys.exit(3)
                time.sleep(0.02)

    def run(self, command: dict[str, Any]) -> dict[str, Any]:
        self.command = command
        op = command["op"]
        if op == "ingest":
            report = self.store.ingest(parsed_from(command), owner=OWNER)
            return {"added": report.added, "unchanged": report.unchanged, "blocked": report.blocked}
        if op == "add":
            added = self.store.add(command["text"], source=SourceRef("manual", "manual", "M"))
            return {"id": added.id if added else None}
        if op == "forget":
            return {"forgotten": self.store.forget(command["ids"])}
        if op == "reindex":
            return {"indexed": self.store.reindex()}
        if op == "nearest":
            # the nearest entry in this process's view of the index to a memory's stored vector
            vector = self.store.vectors([command["id"]])[0]
            hits = self.store.index.query(vector, 1)
            return {"nearest": hits[0].id if hits else None}
        raise ValueError(f"unknown op {op!r}")


def main() -> None:
    store_dir, flags, write_wait = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    open_at = float(sys.argv[4])
    if open_at:
        import chromadb  # noqa: F401  (imported before the moment, so that only opening races)

        time.sleep(max(open_at - time.clock_gettime(time.CLOCK_MONOTONIC), 0.0))
    child = _Child(store_dir, flags, write_wait)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        print(json.dumps(child.run(json.loads(line))), flush=True)
    child.store.close()


if __name__ == "__main__":
    main()
