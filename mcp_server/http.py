"""Streamable HTTP for the MCP server: the app behind the token and Origin gate, and uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp

from mcp_server.access import MIN_TOKEN_CHARS, HTTPGate, is_loopback, weak_tokens
from twin.config import MCPSettings

PATH = "/mcp"
_LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"]


class ServeError(Exception):
    """The server cannot start as asked; the message says why and what to change."""


def check_http(settings: MCPSettings, host: str) -> None:
    """Refuse to serve HTTP that nobody could use safely: without any token every request would
    be refused, and a server reachable from other machines must never run without one."""
    weak = weak_tokens(settings)
    if weak:
        raise ServeError(
            f"refusing to serve MCP over HTTP: {', '.join(weak)} is shorter than "
            f"{MIN_TOKEN_CHARS} characters; use a long random one, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    if settings.token or any(settings.friend_tokens.values()):
        return
    where = "on this machine" if is_loopback(host) else f"on {host}, reachable from other machines,"
    raise ServeError(
        f"refusing to serve MCP over HTTP {where} without a token: set [mcp] token in "
        "twin.toml (`twin init` writes one) or TWIN_MCP__TOKEN"
    )


def http_app(server: MCPServer, settings: MCPSettings, host: str) -> ASGIApp:
    """The server's streamable HTTP app at `/mcp`, behind the Origin and bearer-token gate.

    On a loopback address the SDK also checks the `Host` header (DNS rebinding); on another
    address the host name clients use is not known here, so only Origin and the token apply.
    """
    origins = [o.rstrip("/") for o in settings.allowed_origins]
    any_port = [f"{o}:*" for o in origins if urlsplit(o).port is None]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=is_loopback(host),
        allowed_hosts=_LOOPBACK_HOSTS,
        # The gate has already checked Origin; the SDK's list must agree with it.
        allowed_origins=origins + any_port,
    )
    app = server.streamable_http_app(
        streamable_http_path=PATH, transport_security=security, host=host
    )
    return HTTPGate(app, settings)


def serve_http(server: MCPServer, settings: MCPSettings, host: str, port: int) -> None:
    """Serve until interrupted."""
    check_http(settings, host)
    uvicorn.run(http_app(server, settings, host), host=host, port=port, log_level="warning")


class _QuietServer(uvicorn.Server):
    """uvicorn, leaving signal handling to whoever runs the event loop (`twin serve`)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpService:
    """The HTTP server as one of several services on an event loop: `start` returns once it
    listens, `stop` lets in-flight requests finish."""

    def __init__(self, server: MCPServer, settings: MCPSettings, host: str, port: int) -> None:
        check_http(settings, host)
        config = uvicorn.Config(
            http_app(server, settings, host), host=host, port=port, log_level="warning"
        )
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start (e.g. port in use)
                raise ServeError("the MCP HTTP server stopped while starting")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
