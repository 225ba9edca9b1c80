"""MCP tool latency through the official client: p50/p95 of `search_memories` and `ask_twin` over
stdio, and throughput with concurrent callers over streamable HTTP.

    python benchmarks/mcp_latency.py ../shared/data/locomo-dev.json --gguf model.gguf \
        [--memories 20000] [--searches 200] [--asks 40] [--callers 8] [--home DIR]
    python benchmarks/mcp_latency.py ../shared/data/locomo-dev.json --registry .twin/models

The twin's memory is built from LoCoMo turns as in search_latency.py (kept in --home, if given,
and reused); the model is a GGUF registered as a new version (--gguf) or the current version of
an existing registry (--registry). The server runs as `python -m mcp_server`, a subprocess, as an
agent would start it. Queries are LoCoMo questions. Ends by printing one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from benchmarks.ingest_throughput import big_conversation
from benchmarks.locomo import load, write_export
from memory.embed import SentenceTransformerEmbedder
from memory.models import OwnerIdentity, Visibility
from memory.sources import ImportOptions, get_importer
from memory.store import MemoryStore
from twin.progress import progress_bar
from twin.registry import Manifest, ModelFiles, ModelRegistry

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}


def build_home(home: Path, locomo: Path, memories: int, token: str) -> str:
    """A twin home whose memory holds `memories` LoCoMo chat turns; returns the owner's name."""
    conversation = big_conversation(locomo, memories)
    home.mkdir(parents=True, exist_ok=True)
    (home / "twin.toml").write_text(
        f'[owner]\nname = "{conversation.owner}"\n\n[mcp]\ntoken = "{token}"\n', encoding="utf-8"
    )
    with MemoryStore.open(home / "memory", SentenceTransformerEmbedder()) as store:
        if store.count() < memories:
            (source,) = get_importer("telegram").parse(
                write_export(conversation, home / "export"), ImportOptions()
            )
            with progress_bar("Building the store") as bar:
                owner = OwnerIdentity(names=(conversation.owner,))
                store.ingest(source, owner=owner, visibility=Visibility.FRIENDS, progress=bar)
    return conversation.owner


def register(home: Path, gguf: Path | None, registry: Path | None) -> Manifest:
    """Make the model to measure the only version of the home's registry (a reused home keeps
    its memory, never the model of an earlier run)."""
    shutil.rmtree(home / "models", ignore_errors=True)
    target = ModelRegistry(home / "models")
    if registry is not None:
        source = ModelRegistry(registry)
        manifest = source.current()
        if manifest is None:
            raise SystemExit(f"{registry} has no current model version")
        shutil.copytree(registry / manifest.version, home / "models" / manifest.version)
        target.promote(manifest.version)
        return manifest
    assert gguf is not None
    folder = target.allocate()
    for name in ("owner.gguf", "shared.gguf"):
        shutil.copy(gguf, folder / name)
    manifest = Manifest(
        version=folder.name,
        created_at=datetime.now(UTC),
        base=gguf.name,
        strategy="weak",
        data_hash="-",
        files=ModelFiles(owner="owner.gguf", shared="shared.gguf"),
        context_size=512,
        max_new_tokens=48,
    )
    target.register(manifest)
    target.promote(manifest.version)
    return manifest


def percentiles(times: list[float], prefix: str) -> dict[str, float]:
    times = sorted(times)
    return {
        f"{prefix}_p50_ms": round(statistics.median(times), 1),
        f"{prefix}_p95_ms": round(times[max(0, int(0.95 * len(times)) - 1)], 1),
    }


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    result = await call()
    elapsed = 1000 * (time.perf_counter() - start)
    if getattr(result, "is_error", False):
        raise RuntimeError(f"a tool call failed: {result}")
    return elapsed


async def over_stdio(
    home: Path, questions: list[str], searches: int, asks: int
) -> dict[str, float]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_server", "--home", str(home)], env=OFFLINE
    )
    start = time.perf_counter()
    async with Client(params) as client:
        figures: dict[str, float] = {"stdio_connect_s": round(time.perf_counter() - start, 2)}
        # Warm up: the embedding model, the model, and the caches of SQLite and Chroma.
        for question in questions[-5:]:
            await client.call_tool("search_memories", {"query": question})
            await client.call_tool("ask_twin", {"question": question})
        search_ms = [
            await timed(lambda q=q: client.call_tool("search_memories", {"query": q, "k": 10}))
            for q in questions[:searches]
        ]
        ask_ms = [
            await timed(lambda q=q: client.call_tool("ask_twin", {"question": q}))
            for q in questions[:asks]
        ]
    figures |= percentiles(search_ms, "stdio_search")
    figures |= percentiles(ask_ms, "stdio_ask")
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
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=300)
            )
            clients = [
                await stack.enter_async_context(
                    Client(streamable_http_client(url, http_client=http))
                )
                for _ in range(callers)
            ]
            for question in questions[-5:]:
                await clients[0].call_tool("search_memories", {"query": question})
                await clients[0].call_tool("ask_twin", {"question": question})
            figures: dict[str, float] = {"http_callers": callers}
            for tool, key, name in (
                ("search_memories", "query", "search"),
                ("ask_twin", "question", "ask"),
            ):

                async def caller(
                    client: Client, picked: list[str], tool=tool, key=key
                ) -> list[float]:
                    return [
                        await timed(lambda q=q: client.call_tool(tool, {key: q})) for q in picked
                    ]

                start = time.perf_counter()
                per_caller = await asyncio.gather(
                    *(
                        caller(client, questions[i * calls_each : (i + 1) * calls_each])
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
    parser.add_argument("path", type=Path, help="a LoCoMo JSON file")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--gguf", type=Path, help="a GGUF model to register and serve")
    model.add_argument("--registry", type=Path, help="a model registry (e.g. .twin/models)")
    parser.add_argument("--memories", type=int, default=20000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--asks", type=int, default=40)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--calls-each", type=int, default=10, help="per caller, over HTTP")
    parser.add_argument("--home", type=Path, help="build (or reuse) the twin home here")
    args = parser.parse_args()
    os.environ.update(OFFLINE)

    questions = [q.text for c in load(args.path) for q in c.questions]
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        token = secrets.token_urlsafe(24)
        owner = build_home(home, args.path, args.memories, token)
        manifest = register(home, args.gguf, args.registry)
        with MemoryStore.open(home / "memory", SentenceTransformerEmbedder()) as store:
            count = store.count()
        figures: dict[str, object] = {
            "memories": count,
            "owner": owner,
            "model": f"{manifest.version} ({manifest.base or 'tiny base'}, {manifest.notes})",
        }
        figures |= asyncio.run(over_stdio(home, questions, args.searches, args.asks))
        figures |= asyncio.run(over_http(home, token, questions, args.callers, args.calls_each))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
