"""Bot throughput: messages handled per second by the tiny twin through the Telegram stand-in,
and the reply latency (p50/p95), with many friends writing at once.

    python benchmarks/bot_throughput.py [--users 20] [--messages 5] [--home DIR]

Builds the sample persona's home (its memory, and a tiny random model registered as the twin,
as the tests do) unless --home already holds one (e.g. a home after `twin train`, to measure the
trained twin), copies it for the run, starts the Bot API
stand-in of the tests on 127.0.0.1, and runs the real python-telegram-bot client over the bot
core. Every user is an allowlisted friend who asks a question from the persona's evaluation set,
waits for the reply and asks the next; latency runs from the message reaching the stand-in to the
bot's reply arriving there. Every exchange goes through the whole path: quotas, retrieval, the
model, the output guard, sending, and storing both sides in L0. Ends by printing one line of JSON
with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bots.core import BotCore
from bots.state import BotState
from bots.telegram_bot import TelegramBot
from memory.embed import SentenceTransformerEmbedder
from memory.store import MemoryStore
from tests.bots.fake_telegram import FakeTelegram, TelegramUser
from tests.model_fixtures import build_tiny_model, build_tiny_tokenizer
from tests.twin_fixtures import PERSONA, ingest_persona, register_model
from twin.config import BotSettings, load_settings
from twin.registry import ModelRegistry
from twin.service import Twin, TwinModels

FIRST_USER_ID = 100_001


def build_home(home: Path, embedder: SentenceTransformerEmbedder) -> None:
    """The persona's memory and a tiny random model as the current twin, unless already there."""
    if (home / "memory" / "memory.sqlite").exists() and ModelRegistry(home / "models").current():
        return
    from training.export import export_gguf

    ingest_persona(home, embedder)
    work = home / "tiny-build"
    model = build_tiny_model(work / "model", build_tiny_tokenizer(work / "tokenizer"))
    register_model(home, export_gguf(model, work / "tiny.gguf", "f16"))


def friend_questions() -> list[str]:
    rows = [json.loads(line) for line in (PERSONA / "questions.jsonl").open(encoding="utf-8")]
    return [r["question"] for r in rows if r["audience"] == "friend" and not r["private"]]


async def run(home: Path, users: int, messages: int, embedder: SentenceTransformerEmbedder) -> dict:
    friends = [TelegramUser(FIRST_USER_ID + i, f"Friend {i}") for i in range(users)]
    warm_up = TelegramUser(FIRST_USER_ID - 1, "Warm-up")
    settings = load_settings(home)
    manifest = ModelRegistry(settings.paths.models_dir).current()
    assert manifest is not None
    model = f"{manifest.version} ({manifest.base or 'tiny base'}, {manifest.strategy} CoT)"
    bots = BotSettings(
        friends={"telegram": [str(f.id) for f in (warm_up, *friends)]},
        messages_per_minute=10_000,
        messages_per_day=100_000,
    )
    questions = friend_questions()
    latencies: list[float] = []
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        twin = Twin(settings, store, TwinModels(settings, ModelRegistry(settings.paths.models_dir)))
        with tempfile.TemporaryDirectory() as state_dir, BotState.open(Path(state_dir)) as state:
            core = BotCore(twin, state, bots)
            async with FakeTelegram() as api:
                bot = TelegramBot(core, api.token, base_url=api.root_url, concurrency=users)
                await bot.start()
                try:
                    # The first answer loads the model and builds the guard's index.
                    await api.user_says(warm_up, questions[0])
                    await api.wait_for_sent_to(warm_up.id, 1, timeout=120)

                    async def converse(n: int, friend: TelegramUser) -> None:
                        for i in range(messages):
                            sent = len(api.sent_to(friend.id))
                            started = time.monotonic()
                            await api.user_says(friend, questions[(n + i) % len(questions)])
                            await api.wait_for_sent_to(friend.id, sent + 1, timeout=600)
                            latencies.append(time.monotonic() - started)

                    began = time.monotonic()
                    await asyncio.gather(*(converse(n, f) for n, f in enumerate(friends)))
                    elapsed = time.monotonic() - began
                finally:
                    await bot.stop()
        twin.models.close()
    cut = statistics.quantiles(latencies, n=20, method="inclusive")
    return {
        "benchmark": "bot_throughput",
        "platform": "telegram stand-in, python-telegram-bot 22.8",
        "model": model,
        "users": users,
        "messages": len(latencies),
        "seconds": round(elapsed, 2),
        "messages_per_second": round(len(latencies) / elapsed, 2),
        "latency_p50_ms": round(statistics.median(latencies) * 1000),
        "latency_p95_ms": round(cut[18] * 1000),
        "latency_max_ms": round(max(latencies) * 1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=5, help="messages per user")
    parser.add_argument("--home", type=Path, help="reuse (or keep) the persona's home here")
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        template = args.home or Path(tmp) / "template"
        build_home(template, embedder)
        # Each run talks into a fresh copy: the same chats and message ids would otherwise be
        # recognised as already remembered, and nothing would be stored.
        home = Path(tmp) / "home"
        shutil.copytree(template, home, ignore=shutil.ignore_patterns("tiny-build"))
        figures = asyncio.run(run(home, args.users, args.messages, embedder))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
