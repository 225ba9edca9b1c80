"""MCP tool latency through the official client: p50/p95 of `ask_twin` and `search_memories`
over stdio, answered by a real model; optionally throughput with concurrent callers over
streamable HTTP.

    python benchmarks/mcp_latency.py ../shared/data/locomo-dev.json [--memories 20000] \
        [--questions 40] [--searches 200] [--models DIR | --gguf FILE] [--threads N] \
        [--callers 0] [--calls-each 5] [--home DIR]

The twin's memory is LoCoMo chat turns, replayed until there are --memories of them (as in
search_latency.py), with its L1 profile built; it is kept in --home, if given, and reused. The
model is the current version of a trained twin's models folder (--models, e.g. <home>/models),
or a GGUF registered as v0001 for both sides (--gguf; default the packaged SmolLM2-135M-Instruct,
the base a trained twin is made from, so of the same size and speed), with a trained twin's
serving settings. The server runs as `python -m mcp_server`, a subprocess, as an agent would
start it; llama.cpp gets --threads (0: the server's default, every core but one). Queries are
LoCoMo questions, each asked once after a warm-up. Ends by printing one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from benchmarks.ingest_throughput import big_conversation
from benchmarks.locomo import load, write_export
from benchmarks.served_model import add_model_arguments, describe, install_models, percentiles
from core.clock import FixedClock
from core.progress import progress_bar
from mcp_server.demo import OFFLINE
from memory.embed import SentenceTransformerEmbedder
from memory.models import OwnerIdentity, Visibility
from memory.profile import ProfileBuilder
from memory.sources import ImportOptions, get_importer
from memory.store import MemoryStore

WARM_UP = 3


def write_config(home: Path, owner: str, token: str, threads: int) -> None:
    """twin.toml: the owner, the MCP token, and llama.cpp's threads for the trained model."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "twin.toml").write_text(
        f'[owner]\nname = "{owner}"\n\n[mcp]\ntoken = "{token}"\n\n'
        f"[llm.twin]\nthreads = {threads}\n",
        encoding="utf-8",
    )


def build_memory(home: Path, locomo: Path, memories: int) -> dict[str, float]:
    """Fill the home's memory with `memories` LoCoMo turns and build its L1 profile, unless a
    reused home has them already; returns what it took."""
    conversation = big_conversation(locomo, memories)
    took: dict[str, float] = {}
    with MemoryStore.open(home / "memory", SentenceTransformerEmbedder()) as store:
        if store.count() < memories:
            started = time.perf_counter()
            (source,) = get_importer("telegram").parse(
                write_export(conversation, home / "export"), ImportOptions()
            )
            with progress_bar("Building the store") as bar:
                owner = OwnerIdentity(names=(conversation.owner,))
                store.ingest(source, owner=owner, visibility=Visibility.FRIENDS, progress=bar)
            took["ingest_s"] = round(time.perf_counter() - started, 1)
        if store.conn.execute("SELECT count(*) FROM profile_builds").fetchone()[0] == 0:
            # as of the chat's last day, so that "recent" means the end of the conversation
            newest = store.conn.execute("SELECT max(ts) FROM memories").fetchone()[0]
            clock = FixedClock(datetime.fromtimestamp(newest, tz=UTC))
            started = time.perf_counter()
            ProfileBuilder(store, conversation.owner, clock=clock).build(full=True)
            took["profile_s"] = round(time.perf_counter() - started, 1)
        took["memories"] = store.count()
    return took


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await call()
    elapsed = 1000 * (time.perf_counter() - start)
    if getattr(result, "is_error", False):
        raise RuntimeError(f"a tool call failed: {result}")
    return elapsed, result


async def over_stdio(
    home: Path, questions: list[str], asks: int, searches: int, version: str
) -> dict[str, Any]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_server", "--home", str(home)], env=OFFLINE
    )
    start = time.perf_counter()
    async with Client(params) as client:
        figures: dict[str, Any] = {"stdio_connect_s": round(time.perf_counter() - start, 2)}
        # Warm up: the embedding model, both llama.cpp models, SQLite's and Chroma's caches.
        # The warm-up questions are not measured.
        warm, measured = questions[:WARM_UP], questions[WARM_UP:]
        for i, question in enumerate(warm):
            await client.call_tool("search_memories", {"query": question})
            ms, first = await timed(
                lambda q=question: client.call_tool("ask_twin", {"question": q})
            )
            if i == 0:  # loads the owner's model
                figures["stdio_first_ask_ms"] = round(ms, 1)
            await client.call_tool("ask_twin", {"question": question, "audience": "friend"})
        if not str(first.structured_content.get("model", "")).startswith(version):
            raise RuntimeError(
                f"ask_twin was not answered by {version}: {first.structured_content}"
            )
        search_ms = [
            (await timed(lambda q=q: client.call_tool("search_memories", {"query": q, "k": 10})))[0]
            for q in measured[:searches]
        ]
        ask_ms, answers, found = [], [], 0
        for q in measured[:asks]:
            ms, result = await timed(lambda q=q: client.call_tool("ask_twin", {"question": q}))
            ask_ms.append(ms)
            answers.append(len(result.structured_content["answer"]))
            found += bool(result.structured_content["found"])
    figures |= percentiles(ask_ms, "stdio_ask")
    figures["stdio_ask_max_ms"] = round(max(ask_ms), 1)
    figures["stdio_asks"] = len(ask_ms)
    figures["stdio_ask_found"] = found
    figures["stdio_answer_chars_mean"] = round(statistics.mean(answers))
    figures |= percentiles(search_ms, "stdio_search")
    figures["stdio_searches"] = len(search_ms)
    return figures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_for(port: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the HTTP server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError("the HTTP server did not start")


async def over_http(
    home: Path, token: str, questions: list[str], callers: int, calls_each: int
) -> dict[str, float]:
    """`callers` clients, each in its own session, calling at once; sessions are opened and the
    server warmed up before the clock starts."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_server", "--home", str(home), "--http", "--port", str(port)],
        env={**os.environ, **OFFLINE},
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        await wait_for(port, process)
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=600)
            )
            clients = [
                await stack.enter_async_context(
                    Client(streamable_http_client(url, http_client=http))
                )
                for _ in range(callers)
            ]
            for question in questions[:WARM_UP]:
                await clients[0].call_tool("search_memories", {"query": question})
                await clients[0].call_tool("ask_twin", {"question": question})
            measured = questions[WARM_UP:]
            figures: dict[str, float] = {"http_callers": callers}
            for tool, key, name in (
                ("search_memories", "query", "search"),
                ("ask_twin", "question", "ask"),
            ):

                async def caller(
                    client: Client, picked: list[str], tool=tool, key=key
                ) -> list[float]:
                    return [
                        (await timed(lambda q=q: client.call_tool(tool, {key: q})))[0]
                        for q in picked
                    ]

                start = time.perf_counter()
                per_caller = await asyncio.gather(
                    *(
                        caller(client, measured[i * calls_each : (i + 1) * calls_each])
                        for i, client in enumerate(clients)
                    )
                )
                wall = time.perf_counter() - start
                times = [t for ts in per_caller for t in ts]
                figures[f"http_{name}_calls_per_s"] = round(len(times) / wall, 2)
                figures |= percentiles(times, f"http_{name}_under_load")
        return figures
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="a LoCoMo JSON file (memories and questions)")
    parser.add_argument("--memories", type=int, default=20000)
    parser.add_argument("--questions", type=int, default=40, help="ask_twin calls measured")
    parser.add_argument("--searches", type=int, default=200, help="search_memories calls")
    add_model_arguments(parser)
    parser.add_argument("--callers", type=int, default=0, help="HTTP callers at once (0: none)")
    parser.add_argument("--calls-each", type=int, default=5, help="per caller, over HTTP")
    parser.add_argument("--home", type=Path, help="build (or reuse) the twin's home here")
    args = parser.parse_args()
    os.environ.update(OFFLINE)

    questions = [q.text for c in load(args.path) for q in c.questions]
    needed = WARM_UP + max(args.questions, args.searches, args.callers * args.calls_each)
    if len(questions) < needed:
        raise SystemExit(f"{args.path} has {len(questions)} questions; {needed} are needed")
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        token = secrets.token_urlsafe(24)
        write_config(home, load(args.path)[0].owner, token, args.threads)
        figures: dict[str, Any] = build_memory(home, args.path, args.memories)
        manifest = install_models(home / "models", trained=args.models, gguf=args.gguf)
        figures |= {
            "model": describe(manifest),
            "max_new_tokens": manifest.max_new_tokens,
            "llama_threads": args.threads or "default",
            "cpus": os.cpu_count(),
        }
        figures |= asyncio.run(
            over_stdio(home, questions, args.questions, args.searches, manifest.version)
        )
        if args.callers:
            figures |= asyncio.run(over_http(home, token, questions, args.callers, args.calls_each))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
