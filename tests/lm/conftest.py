"""The LLM backend tests (their models and servers are in `tests.lm_fixtures`)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _torch_on_one_thread(torch_single_thread: None) -> None:
    """Every LLM test runs torch single-threaded (see `torch_single_thread`)."""
