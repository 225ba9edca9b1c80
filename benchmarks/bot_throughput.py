"""Bot throughput: messages handled per second by the twin through the Telegram stand-in, and
the reply latency (p50/p95), with many friends writing at once.

    python benchmarks/bot_throughput.py [--users 8] [--messages 3] [--models DIR | --gguf FILE] \
        [--threads N] [--home DIR]

Builds the sample persona's home (its memory and L1 profile) unless --home already holds one,
and serves it with the model to measure: the current version of a trained twin's models folder
(--models, e.g. <home>/models after `twin train`), or a GGUF registered as v0001 for both sides
(--gguf; default the packaged SmolLM2-135M-Instruct, the base a trained twin is made from, so of
the same size and speed) with a trained twin's serving settings. Each run copies the home,
starts the Bot API stand-in of the tests on 127.0.0.1 and runs the real python-telegram-bot
client over the bot core, with the twin opened as `twin serve` opens it (llama.cpp threads:
--threads, 0 = every core but one). Every user is an allowlisted friend who asks a question from
the persona's evaluation set, waits for the reply and asks the next; latency runs from the
message reaching the stand-in to the bot's reply arriving there. Every exchange goes through the
whole path: quotas, retrieval, the shared model, the output guard, sending, and storing both
sides in L0. Ends by printing one line of JSON with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.served_model import add_model_arguments, describe, install_models, percentiles
from bots.core import BotCore
from bots.state import BotState
from bots.telegram_bot import TelegramBot
from memory.embed import SentenceTransformerEmbedder
from memory.store import MemoryStore
from serving.service import open_twin
from tests.bots.fake_telegram import FakeTelegram, TelegramUser
from tests.conftest import PERSONA
from tests.twin_fixtures import ingest_persona
from twin.config import BotSettings, load_settings
from twin.profile_writers import profile_builder

FIRST_USER_ID = 100_001


def build_memory(home: Path, embedder: SentenceTransformerEmbedder) -> None:
    """The persona's memory and L1 profile, unless the home has them already."""
    if (home / "memory" / "memory.sqlite").exists():
        return
    settings = ingest_persona(home, PERSONA, embedder)
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        profile_builder(store, settings).build()


def friend_questions() -> list[str]:
    rows = [json.loads(line) for line in (PERSONA / "questions.jsonl").open(encoding="utf-8")]
    return [r["question"] for r in rows if r["audience"] == "friend" and not r["private"]]


async def run(
    home: Path, users: int, messages: int, threads: int, embedder: SentenceTransformerEmbedder
) -> dict[str, Any]:
    friends = [TelegramUser(FIRST_USER_ID + i, f"Friend {i}") for i in range(users)]
    warm_up = TelegramUser(FIRST_USER_ID - 1, "Warm-up")
    settings = load_settings(home, llm={"twin": {"threads": threads}})
    bots = BotSettings(
        friends={"telegram": [str(f.id) for f in (warm_up, *friends)]},
        messages_per_minute=10_000,
        messages_per_day=100_000,
    )
    questions = friend_questions()
    latencies: list[float] = []
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        twin = open_twin(settings, store)
        with tempfile.TemporaryDirectory() as state_dir, BotState.open(Path(state_dir)) as state:
            core = BotCore(twin, state, bots)
            async with FakeTelegram() as api:
                bot = TelegramBot(core, api.token, base_url=api.root_url, concurrency=users)
                await bot.start()
                try:
                    # The first answer loads the shared model and builds the guard's index.
                    started = time.monotonic()
                    await api.user_says(warm_up, questions[0])
                    await api.wait_for_sent_to(warm_up.id, 1, timeout=300)
                    first_reply = time.monotonic() - started

                    async def converse(n: int, friend: TelegramUser) -> None:
                        for i in range(messages):
                            sent = len(api.sent_to(friend.id))
                            started = time.monotonic()
                            await api.user_says(friend, questions[(n + i) % len(questions)])
                            await api.wait_for_sent_to(friend.id, sent + 1, timeout=1800)
                            latencies.append(1000 * (time.monotonic() - started))

                    began = time.monotonic()
                    await asyncio.gather(*(converse(n, f) for n, f in enumerate(friends)))
                    elapsed = time.monotonic() - began
                    replies = [text for f in friends for text in api.sent_to(f.id)]
                finally:
                    await bot.stop()
        twin.models.close()
    return {
        "users": users,
        "messages": len(latencies),
        "first_reply_ms": round(1000 * first_reply),
        "seconds": round(elapsed, 2),
        "messages_per_second": round(len(latencies) / elapsed, 3),
        **percentiles(latencies, "latency"),
        "latency_max_ms": round(max(latencies)),
        "reply_chars_mean": round(statistics.mean(len(r) for r in replies)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8, help="friends writing at once")
    parser.add_argument("--messages", type=int, default=3, help="messages per user")
    add_model_arguments(parser)
    parser.add_argument("--home", type=Path, help="reuse (or keep) the persona's home here")
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        template = args.home or Path(tmp) / "template"
        build_memory(template, embedder)
        # Each run talks into a fresh copy: the same chats and message ids would otherwise be
        # recognised as already remembered, and nothing would be stored.
        home = Path(tmp) / "home"
        shutil.copytree(template, home, ignore=shutil.ignore_patterns("models", "runs", "bases"))
        manifest = install_models(home / "models", trained=args.models, gguf=args.gguf)
        figures: dict[str, Any] = {
            "benchmark": "bot_throughput",
            "platform": f"telegram stand-in, python-telegram-bot {version('python-telegram-bot')}",
            "model": describe(manifest),
            "max_new_tokens": manifest.max_new_tokens,
            "llama_threads": args.threads or "default",
            "cpus": os.cpu_count(),
        }
        figures |= asyncio.run(run(home, args.users, args.messages, args.threads, embedder))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
