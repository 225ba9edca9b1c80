"""Fixtures for the MCP server tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from serving.service import Twin
from tests.mcp_server.serving import serve_twin


@pytest.fixture
def http_url(persona_twin: Twin) -> Iterator[str]:
    """The persona's twin served over streamable HTTP (in this process) with the test tokens."""
    with serve_twin(persona_twin) as url:
        yield url
