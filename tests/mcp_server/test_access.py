"""Who a caller is and what they may do: tokens, audiences, Origin, binding rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import app
from mcp_server.__main__ import app as module_app
from mcp_server.access import OWNER, caller_for_token, is_loopback, narrower, origin_allowed
from mcp_server.http import ServeError, check_http
from twin.config import MCPSettings
from twin.privacy import Audience, AudienceKind

LONG = "x7Kq2-long-enough-random-token-0123"
SETTINGS = MCPSettings(token="owner-secret", friend_tokens={"ana": "ana-secret", "bo": ""})


def test_tokens_name_the_caller() -> None:
    assert caller_for_token(SETTINGS, "owner-secret") == OWNER
    ana = caller_for_token(SETTINGS, "ana-secret")
    assert ana is not None and ana.name == "ana"
    assert ana.audience == Audience.friend("mcp:ana")
    for wrong in ("", "owner-secret ", "ana", "OWNER-SECRET"):
        assert caller_for_token(SETTINGS, wrong) is None
    # An unset token (the owner's, or bo's) never lets an empty bearer in.
    assert caller_for_token(MCPSettings(), "") is None


def test_an_audience_can_be_narrowed_but_never_widened() -> None:
    owner, friend = Audience.owner(), Audience.friend("mcp:ana")
    assert narrower(owner, None) == owner
    assert narrower(owner, AudienceKind.FRIEND).kind == AudienceKind.FRIEND
    assert narrower(friend, AudienceKind.PUBLIC) == Audience.public("mcp:ana")
    with pytest.raises(PermissionError, match="connected as friend"):
        narrower(friend, AudienceKind.OWNER)
    with pytest.raises(PermissionError):
        narrower(Audience.public(), AudienceKind.FRIEND)


def test_origins() -> None:
    allowed = ["http://localhost", "http://127.0.0.1", "https://app.example:8443"]
    assert origin_allowed("http://localhost:6274", allowed)
    assert origin_allowed("http://127.0.0.1", allowed)
    assert origin_allowed("https://app.example:8443", allowed)
    assert not origin_allowed("https://app.example:9000", allowed)
    assert not origin_allowed("https://localhost:6274", allowed)
    assert not origin_allowed("http://localhost.evil.example", allowed)
    assert not origin_allowed("null", allowed)


def test_loopback_addresses() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.5", "twin.example"):
        assert not is_loopback(host), host


def test_http_needs_a_token() -> None:
    with pytest.raises(ServeError, match="reachable from other machines"):
        check_http(MCPSettings(), "0.0.0.0")
    with pytest.raises(ServeError, match="on this machine"):
        check_http(MCPSettings(), "127.0.0.1")
    check_http(MCPSettings(token=LONG), "0.0.0.0")
    check_http(MCPSettings(friend_tokens={"ana": LONG}), "127.0.0.1")


def test_short_tokens_are_refused_without_showing_them() -> None:
    for settings, where in (
        (MCPSettings(token="t"), "mcp.token"),
        (MCPSettings(token=LONG, friend_tokens={"ana": "abc123"}), "mcp.friend_tokens.ana"),
    ):
        with pytest.raises(ServeError, match=rf"{re.escape(where)} is shorter than 24") as raised:
            check_http(settings, "127.0.0.1")
        assert "abc123" not in str(raised.value) and "'t'" not in str(raised.value)


@pytest.fixture
def tokenless_home(tmp_path: Path) -> Path:
    (tmp_path / "twin.toml").write_text('[owner]\nname = "Ada"\n', encoding="utf-8")
    return tmp_path


def test_serving_a_public_address_without_a_token_is_refused(
    tokenless_home: Path,
) -> None:
    runner = CliRunner()
    args = ["--http", "--host", "0.0.0.0", "--port", "1"]
    direct = runner.invoke(module_app, ["--home", str(tokenless_home), *args])
    assert direct.exit_code == 1
    assert "refusing to serve MCP over HTTP on 0.0.0.0" in direct.output

    served = runner.invoke(app.app, ["--home", str(tokenless_home), "serve", "mcp", *args])
    assert served.exit_code == 1
    assert "refusing to serve MCP over HTTP on 0.0.0.0" in served.output
    assert "[mcp] token" in served.output
