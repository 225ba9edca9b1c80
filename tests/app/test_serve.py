"""`twin serve`: the MCP server over HTTP and the retraining schedule together, in a real
process, reached by the official MCP client, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from core.job_store import next_retraining
from tests.mcp_server.serving import OWNER_TOKEN, connected
from tests.twin_fixtures import register_model
from twin.config import load_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_twin_serve_runs_mcp_and_the_schedule_until_sigterm(
    persona_home: Path, tiny_gguf_path: Path
) -> None:
    register_model(persona_home, tiny_gguf_path)
    port = free_port()
    with (persona_home / "twin.toml").open("a") as config:
        config.write(f'\n[mcp]\ntoken = "{OWNER_TOKEN}"\nport = {port}\n')
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from app import app; app()",
            "--home",
            str(persona_home),
            "serve",
            "--no-bots",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "twin serve did not start listening"
                time.sleep(0.5)

        async def ask() -> list[str]:
            async with connected(url) as client:
                return [tool.name for tool in (await client.list_tools()).tools]

        assert "ask_twin" in asyncio.run(ask())
        assert next_retraining(load_settings(persona_home).paths.schedule_db) is not None
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    assert "MCP over HTTP" in errors and "Retraining checked" in errors
