"""The `twin` command, driven as a user would, on the sample persona."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app

runner = CliRunner()


def twin(home: Path, *args: str, input: str | None = None):
    return runner.invoke(app, ["--home", str(home), *args], input=input)


@pytest.fixture
def home(tmp_path: Path, persona_dir: Path) -> Path:
    home = tmp_path / "home"
    assert twin(home, "init", "--owner", "Iris Calder").exit_code == 0
    (home / "twin.toml").write_text((persona_dir / "twin.toml").read_text())
    return home


def test_help_reads_well() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "ingest", "search", "memory", "demo"):
        assert command in result.output


def test_ingest_search_export(home: Path, persona_dir: Path, tmp_path: Path) -> None:
    chat = persona_dir / "whatsapp" / "WhatsApp Chat with Sam.txt"
    first = twin(home, "ingest", str(chat))
    assert first.exit_code == 0, first.output
    assert "WhatsApp: Sam" in first.output
    again = twin(home, "ingest", str(chat))
    assert again.exit_code == 0
    assert "WhatsApp: Sam" in again.output

    found = twin(home, "search", "Kyoto trip", "-k", "3")
    assert found.exit_code == 0
    assert "Kyoto" in found.output or "Japan" in found.output

    out = tmp_path / "all.jsonl"
    exported = twin(home, "memory", "export", "-o", str(out))
    assert exported.exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) > 100
    assert {r["source"] for r in rows} == {"whatsapp:Sam"}
    assert all(r["visibility"] == "friends" for r in rows)


def test_malformed_export_is_reported_and_nothing_is_written(home: Path, tmp_path: Path) -> None:
    good = tmp_path / "notes" / "ok.md"
    good.parent.mkdir()
    good.write_text("# Fine\n\nA fine note.\n")
    bad = tmp_path / "result.json"
    bad.write_text('{"name": "Tomás", "type": "personal_chat", "id": 1, "messages": [{"id": 1,')
    result = twin(home, "ingest", str(good.parent), str(bad), "--format", "auto")
    assert result.exit_code == 1
    assert "result.json" in result.output
    assert "Nothing was imported" in result.output
    stats = twin(home, "memory", "stats")
    assert "0 memories" in stats.output


def test_forget_by_id_is_final(home: Path, tmp_path: Path) -> None:
    note = tmp_path / "secret.md"
    note.write_text(
        "---\nvisibility: private\n---\n# Secret\n\nThe spare key is under the plant.\n"
    )
    assert twin(home, "ingest", str(note)).exit_code == 0
    rows = [json.loads(x) for x in twin(home, "memory", "export").stdout.splitlines() if x]
    (row,) = rows
    assert row["visibility"] == "private"

    refused = twin(home, "memory", "forget", row["id"], input="n\n")
    assert refused.exit_code == 1
    assert "1 memories" in twin(home, "memory", "stats").output

    done = twin(home, "memory", "forget", row["id"], "--yes")
    assert done.exit_code == 0 and "Forgot 1" in done.output
    assert twin(home, "ingest", str(note)).exit_code == 0
    assert "0 memories" in twin(home, "memory", "stats").output
    missing = twin(home, "memory", "forget", "m_nope", "--yes")
    assert missing.exit_code == 1 and "m_nope" in missing.output


def test_forget_by_phrase_and_reindex(home: Path, persona_dir: Path) -> None:
    chat = persona_dir / "whatsapp" / "WhatsApp Chat - Calder clan.txt"
    assert twin(home, "ingest", str(chat)).exit_code == 0
    before = twin(home, "memory", "export").stdout.count("\n")
    result = twin(home, "memory", "forget", "--query", "Leo", "--yes")
    assert result.exit_code == 0
    forgotten = int(result.output.split("Forgot ")[1].split()[0])
    assert forgotten > 0
    assert twin(home, "memory", "export").stdout.count("\n") == before - forgotten

    reindexed = twin(home, "memory", "reindex")
    assert reindexed.exit_code == 0
    assert f"Indexed {before - forgotten} memories" in reindexed.output


def test_search_as_friend_hides_private_notes(home: Path, tmp_path: Path) -> None:
    note = tmp_path / "addr.md"
    note.write_text("---\nvisibility: private\n---\n# Home\n\nI live at Rua dos Remédios 42.\n")
    assert twin(home, "ingest", str(note)).exit_code == 0
    assert "Remédios" in twin(home, "search", "where do I live").output
    as_friend = twin(home, "search", "where do I live", "--as", "friend")
    assert as_friend.exit_code == 0
    assert "Remédios" not in as_friend.output
    assert "No memories match" in as_friend.output
    assert twin(home, "search", "x", "--as", "boss").exit_code == 1
