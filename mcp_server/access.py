"""Who is calling the MCP server, and what they may do.

Over stdio the client is a program the owner started (Claude Desktop, Claude Code): it gets the
owner's audience. Over HTTP the bearer token says who it is: the owner's token, or a friend's
(`[mcp.friend_tokens]`), which carries the friend audience with the principal `mcp:<name>`.

`HTTPGate` is the ASGI layer in front of the HTTP endpoint: it checks the `Origin` header and the
token, and stores the caller's audience in the request scope. `AudienceMiddleware` runs inside
the MCP server for every message and makes that audience the current one while the handler
runs; tools, resources and prompts read it with `current_audience()`.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from twin.config import MCPSettings
from twin.privacy import Audience, AudienceKind

log = logging.getLogger(__name__)

Transport = Literal["stdio", "http"]
# A bearer token shorter than this is refused (`twin init` writes 43 random characters).
MIN_TOKEN_CHARS = 24

# Where `HTTPGate` leaves the caller for the MCP server to find (the ASGI scope of the request).
SCOPE_KEY = "twin.caller"

_current: ContextVar[Caller | None] = ContextVar("twin_mcp_caller", default=None)


@dataclass(frozen=True)
class Caller:
    """Who sent the message being handled: their audience and a name for prompts and logs."""

    audience: Audience
    name: str

    @property
    def is_owner(self) -> bool:
        return self.audience.is_owner


OWNER = Caller(Audience.owner(), "owner")


def caller_for_token(settings: MCPSettings, token: str) -> Caller | None:
    """The caller a bearer token identifies, or None. Compared in constant time; an empty
    configured token never matches."""
    found: Caller | None = None
    if settings.token and secrets.compare_digest(token.encode(), settings.token.encode()):
        found = OWNER
    for name, friend_token in settings.friend_tokens.items():
        if friend_token and secrets.compare_digest(token.encode(), friend_token.encode()):
            found = found or Caller(Audience.friend(f"mcp:{name}"), name)
    return found


def current_caller() -> Caller:
    """The caller of the message being handled. Outside a message (which only happens in a
    misconfigured server) nobody is trusted: the public audience."""
    return _current.get() or Caller(Audience.public(), "unknown")


def current_audience() -> Audience:
    return current_caller().audience


def narrower(caller: Audience, requested: AudienceKind | None) -> Audience:
    """The audience to answer as: the caller's own, or a narrower one they asked for (the owner
    may preview what a friend would be told). Asking for a wider one is refused."""
    if requested is None or requested == caller.kind:
        return caller
    order = [AudienceKind.PUBLIC, AudienceKind.FRIEND, AudienceKind.OWNER]
    if order.index(requested) > order.index(caller.kind):
        raise PermissionError(
            f"you are connected as {caller.kind.value}; you may ask as "
            f"{' or '.join(k.value for k in order[: order.index(caller.kind) + 1])} only"
        )
    return Audience(requested, caller.principal)


class AudienceMiddleware:
    """Sets the current caller for each message the server handles.

    Over stdio every message is the owner's. Over HTTP the caller is the one `HTTPGate` put in
    the request's scope; a message without one is refused rather than guessed. Tools in
    `owner_only` are left out of the tool list other callers get (they refuse them anyway).
    """

    def __init__(self, transport: Transport, owner_only: frozenset[str] = frozenset()) -> None:
        self.transport = transport
        self.owner_only = owner_only

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        caller = self._caller(ctx)
        token = _current.set(caller)
        try:
            result = await call_next(ctx)
        finally:
            _current.reset(token)
        if (
            ctx.method == "tools/list"
            and isinstance(result, dict)
            and not (caller and caller.is_owner)
        ):
            result["tools"] = [t for t in result["tools"] if t["name"] not in self.owner_only]
        return result

    def _caller(self, ctx: ServerRequestContext[Any, Any]) -> Caller | None:
        if self.transport == "stdio":
            return OWNER
        scope = getattr(ctx.request, "scope", None) or {}
        caller = scope.get(SCOPE_KEY)
        if caller is None and ctx.request_id is not None:
            raise MCPError(code=INVALID_REQUEST, message="not authenticated")
        return caller


class HTTPGate:
    """ASGI middleware for the HTTP endpoint: Origin check (403), bearer token (401).

    Browsers send `Origin`; a page on another site must not drive the owner's twin through
    their browser (DNS rebinding), so an origin not in `allowed_origins` is refused. An allowed
    origin without a port allows every port of that host (the MCP Inspector's web UI runs on
    one of its own). Programs that send no `Origin` at all are fine.
    """

    def __init__(self, app: ASGIApp, settings: MCPSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin and not origin_allowed(origin, self.settings.allowed_origins):
            _log_refusal(scope, 403, f"origin {origin!r} not allowed")
            await _refuse(send, 403, "origin not allowed")
            return
        scheme, _, token = headers.get("authorization", "").partition(" ")
        caller = (
            caller_for_token(self.settings, token.strip()) if scheme.lower() == "bearer" else None
        )
        if caller is None:
            why = "an unknown bearer token" if token.strip() else "no bearer token"
            _log_refusal(scope, 401, why)
            await _refuse(send, 401, "a valid bearer token is required")
            return
        await self.app({**scope, SCOPE_KEY: caller}, receive, send)


def weak_tokens(settings: MCPSettings) -> list[str]:
    """The configured tokens too short to be safe, named by where they are set (never shown)."""
    named = {"mcp.token": settings.token}
    named.update({f"mcp.friend_tokens.{name}": t for name, t in settings.friend_tokens.items()})
    return [where for where, token in named.items() if token and len(token) < MIN_TOKEN_CHARS]


def _log_refusal(scope: Scope, status: int, why: str) -> None:
    """A refused request, for the owner's log: who, what, why; never the token itself."""
    client = scope.get("client") or ("?", 0)
    log.warning(
        "refused %s %s from %s (%d): %s",
        scope.get("method", "?"),
        scope.get("path", "?"),
        client[0],
        status,
        why,
    )


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="twin"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def origin_allowed(origin: str, allowed: list[str]) -> bool:
    """Whether a browser `Origin` is one of `allowed` (an entry without a port allows any)."""
    got = urlsplit(origin.lower())
    for entry in allowed:
        want = urlsplit(entry.lower().rstrip("/"))
        if (got.scheme, got.hostname) != (want.scheme, want.hostname):
            continue
        if want.port is None or got.port == want.port:
            return True
    return False


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
