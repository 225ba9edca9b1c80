"""Progress off a terminal: log lines at each tenth, named by the work they are about."""

from __future__ import annotations

import pytest

from core import progress as progress_module
from core.progress import progress_bar, stage_progress


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "twin.progress"]


def test_progress_is_logged_at_each_tenth_and_at_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("INFO", logger="twin.progress"), progress_bar("Embedding") as bar:
        for done in range(0, 1001, 50):
            bar(done, 1000)
        bar.describe("Embedding WhatsApp: Sam")
        bar(3, 3)

    logged = messages(caplog)
    assert logged[0] == "Embedding: 0/1000 (0%)"
    assert logged[1] == "Embedding: 100/1000 (10%)"
    assert logged[10] == "Embedding: 1000/1000 (100%)"
    assert len(logged) == 12
    assert logged[-1] == "Embedding WhatsApp: Sam: 3/3 (100%)"


def test_stages_are_logged_by_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="twin.progress"), stage_progress() as update:
        update("Topics", 1, 2)
        update("Topics", 1, 2)
        update("Facts", 1, 2)

    assert messages(caplog) == ["Topics: 1/2 (50%)", "Facts: 1/2 (50%)"]


def test_without_configured_logging_progress_goes_to_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress_module.log, "hasHandlers", lambda: False)
    monkeypatch.setattr(progress_module.log, "propagate", False)

    with progress_bar("Indexing") as bar:
        bar(5, 5)

    assert capsys.readouterr().err.rstrip().endswith("Indexing: 5/5 (100%)")
    assert progress_module.log.handlers == []
