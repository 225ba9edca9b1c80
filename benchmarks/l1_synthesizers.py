"""L1 written by the offline writers against L1 written by SmolLM2, on one persona.

    python benchmarks/l1_synthesizers.py examples/persona [--out FILE] [--threads N]
        [--server URL [--model NAME]]

The persona's exports and notes are ingested as `twin ingest` would into a temporary home (its
twin.toml, the importers, the default visibilities), and L1 is built in full from two copies of
that memory, on a fixed clock (the day of the newest memory): with the offline writers (pattern
facts, keyword topics, template bios), and with the packaged SmolLM2-135M-Instruct run in-process
by llama.cpp as the synthesizer (`[llm.synthesizer] backend = "llamacpp"`: the writers
`twin profile build` then uses), or, with `--server`, served by an OpenAI-compatible server at
that URL (`backend = "openai"`, e.g. `python -m llama_cpp.server --model <the GGUF>`: the path a
user with a local server takes, with its capability negotiation). For each build: seconds,
facts, the share of facts a cited memory supports, and the topic names of every scope.

"Supported" is an automatic check, not a judgement: every content word of the fact's value
(accents and case aside) is in one of the memories it cites. Ten facts of each build, with the
memories they cite, go to stderr for a human to check. A build that fails reports its error and
how long it ran. Progress goes to stderr; the figures end as one line of JSON on stdout (and in
--out, when given).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as day_time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.persona_coverage import newest_memory, persona_inputs
from core.clock import Clock, FixedClock
from core.progress import stage_progress
from lm import LLMError
from memory.lexical import content_words as lexical_words
from memory.models import Memory
from memory.profile import FactView, Profile, ProfileBuilder, Scope
from training.bases import DEFAULT_BASE, packaged_gguf
from training.synthesize.passages import normalise
from twin.config import CONFIG_FILE, load_settings
from twin.ingest import open_store, parse_paths, store_parsed
from twin.profile_writers import profile_writers

HAND_CHECKED = 10
CONTEXT_SIZE = 4096
MAX_TOKENS = 512
SHOWN_CHARS = 300
# seconds per request: a bio from a one-thread server on a busy machine takes minutes
SERVER_TIMEOUT = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("persona", type=Path, help="a persona folder (twin.toml, exports, notes)")
    parser.add_argument("--out", type=Path, help="also write the figures (JSON) here")
    parser.add_argument(
        "--threads", type=int, default=0, help="llama.cpp threads (0: all cores but one)"
    )
    parser.add_argument(
        "--server", help="an OpenAI-compatible server's base URL (…/v1) to synthesize with"
    )
    parser.add_argument("--model", default="smollm2", help="the model name to ask the --server for")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        offline_home = Path(tmp) / "offline"
        memories, now = ingest(args.persona, offline_home)
        llm_home = Path(tmp) / "smollm2"
        shutil.copytree(offline_home, llm_home)
        clock = FixedClock(now)
        figures: dict[str, Any] = {
            "persona": str(args.persona),
            "memories": memories,
            "now": now.date().isoformat(),
        }
        figures["offline"] = measure("offline", offline_home, None, clock)
        synthesizer: dict[str, Any] = {
            "backend": "llamacpp",
            "path": str(packaged_gguf(DEFAULT_BASE)),
            "threads": args.threads,
            "context_size": CONTEXT_SIZE,
            "max_tokens": MAX_TOKENS,
        }
        if args.server:
            synthesizer = {
                "backend": "openai",
                "base_url": args.server,
                "model": args.model,
                "max_tokens": MAX_TOKENS,
                "timeout": SERVER_TIMEOUT,
            }
            figures["server"] = args.server
        figures["smollm2"] = measure("smollm2", llm_home, synthesizer, clock)
    line = json.dumps(figures, ensure_ascii=False)
    if args.out:
        args.out.write_text(line + "\n", encoding="utf-8")
    print(line)


def ingest(persona: Path, home: Path) -> tuple[int, datetime]:
    """The persona in a new home at `home`: how many memories, and the newest one's day."""
    home.mkdir(parents=True)
    shutil.copy(persona / CONFIG_FILE, home / CONFIG_FILE)
    settings = load_settings(home)
    say(f"ingesting {persona} …")
    with open_store(settings) as store:
        for item in parse_paths(persona_inputs(persona), settings):
            store_parsed(store, item, settings)
        newest = newest_memory(store)
        return store.count(), datetime.combine(newest.date(), day_time(12), tzinfo=UTC)


def measure(name: str, home: Path, synthesizer: dict[str, Any] | None, clock: Clock) -> dict:
    """Build L1 in full in `home` with the offline writers (`synthesizer` None) or the LLM ones,
    and what came of it."""
    overrides = {"llm": {"synthesizer": synthesizer}} if synthesizer else {}
    settings = load_settings(home, **overrides)
    writers = profile_writers(settings)
    say(f"building L1 with the {name} writers …")
    with open_store(settings) as store:
        builder = ProfileBuilder(
            store,
            settings.owner.name,
            namer=writers.namer,
            extractor=writers.extractor,
            bio_writer=writers.bio_writer,
            clock=clock,
        )
        started = time.perf_counter()
        try:
            with stage_progress() as progress:
                builder.build(full=True, progress=progress)
        except LLMError as exc:
            seconds = round(time.perf_counter() - started, 1)
            say(f"{name}: the build failed after {seconds} s: {exc}")
            return {"seconds": seconds, "error": str(exc)}
        seconds = round(time.perf_counter() - started, 1)
        profile = Profile(store, settings.owner.name, clock=clock)
        views = {scope: profile.for_scope(scope) for scope in Scope}
    facts = [f for f in views[Scope.OWNER].facts if f.status == "active"]
    supported = [f for f in facts if is_supported(f)]
    say(f"{name}: {len(facts)} facts in {seconds} s, {len(supported)} supported")
    show_sample(name, facts)
    return {
        "seconds": seconds,
        "facts": len(facts),
        "supported": len(supported),
        "supported_share": round(len(supported) / len(facts), 3) if facts else None,
        "topics": {str(s): [t.label for t in v.topics] for s, v in views.items()},
        "bio": views[Scope.OWNER].bio("global", "third"),
    }


def is_supported(fact: FactView) -> bool:
    """Whether one memory the fact cites holds every content word of its value (the whole
    value, when it has no content words: a number, a date)."""
    value = normalise(fact.value)
    wanted = content_words(value)
    for memory in fact.sources:
        text = normalise(memory.text)
        if (wanted <= content_words(text)) if wanted else value in text:
            return True
    return False


def content_words(text: str) -> set[str]:
    """The words of `text` that carry a topic (retrieval's own stop words left out)."""
    return set(lexical_words(text))


def show_sample(name: str, facts: list[FactView]) -> None:
    """Ten facts (a seeded choice) and the memories they cite, for a human to check."""
    chosen = random.Random(0).sample(facts, min(HAND_CHECKED, len(facts)))
    say(f"--- {name}: {len(chosen)} facts to check by hand ---")
    for i, fact in enumerate(chosen, 1):
        mark = "supported" if is_supported(fact) else "NOT supported"
        say(f"[{i}] {fact.statement}  (attribute {fact.attribute}, value {fact.value!r}: {mark})")
        for memory in fact.sources:
            say(f"      cites {memory.id}: {shown(memory)}")


def shown(memory: Memory) -> str:
    flat = " ".join(memory.text.split())
    return flat if len(flat) <= SHOWN_CHARS else flat[: SHOWN_CHARS - 1] + "…"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
