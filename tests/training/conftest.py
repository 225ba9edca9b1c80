"""Fixtures of the training tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _torch_on_one_thread(torch_single_thread: None) -> None:
    """Training tests run torch single-threaded: tiny models train fastest that way, and the
    machine's other cores belong to other work (see `torch_single_thread`)."""
