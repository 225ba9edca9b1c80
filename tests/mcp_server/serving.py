"""The MCP server for tests: served over streamable HTTP from a thread of the test process (on a
free 127.0.0.1 port), and reached with the official client over HTTP or stdio."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx2
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.types import ASGIApp

from mcp_server.http import PATH, http_app
from mcp_server.profile import ProfileReader
from mcp_server.server import build_server
from serving.service import Twin
from twin.config import MCPSettings

OWNER_TOKEN = "owner-token-0123456789abcdefghijklmnop"
FRIEND_TOKEN = "friend-token-0123456789abcdefghijklmno"
TOKENS = MCPSettings(token=OWNER_TOKEN, friend_tokens={"ana": FRIEND_TOKEN})


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yields the MCP URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test MCP server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}{PATH}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextmanager
def serve_twin(twin: Twin, profile: ProfileReader | None = None) -> Iterator[str]:
    """`twin`'s MCP server over HTTP with the test tokens; yields its URL."""
    with serving(http_app(build_server(twin, "http", profile), TOKENS, "127.0.0.1")) as url:
        yield url


@asynccontextmanager
async def connected(url: str, token: str | None = OWNER_TOKEN) -> AsyncIterator[Client]:
    """An official MCP client session over streamable HTTP, with `token` as bearer."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client
