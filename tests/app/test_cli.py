"""The `twin` command, driven as a user would, on the sample persona."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import app

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


def test_init_without_an_owner_is_refused(tmp_path: Path) -> None:
    result = twin(tmp_path / "home", "init")

    assert result.exit_code == 1
    assert 'twin init --owner "Your Name"' in result.output
    assert not (tmp_path / "home" / "twin.toml").exists()
    assert twin(tmp_path / "home", "init", "--owner", "  ").exit_code == 1

    quoted = twin(tmp_path / "home", "init", "--owner", 'Iris "Reef" Calder\\')
    assert quoted.exit_code == 0, quoted.output
    assert 'name = "Iris \\"Reef\\" Calder\\\\"' in (tmp_path / "home" / "twin.toml").read_text()


def exports_folder(tmp_path: Path, persona_dir: Path) -> Path:
    """A folder with the persona's WhatsApp and Discord exports and what else lies around."""
    exports = tmp_path / "exports"
    exports.mkdir()
    shutil.copy(persona_dir / "whatsapp" / "WhatsApp Chat with Sam.txt", exports)
    shutil.copy(persona_dir / "discord" / "reef-watchers-general.json", exports)
    (exports / "empty.json").write_text("")
    (exports / "sticker.webp").write_bytes(b"RIFF\x00\x00WEBP")
    (exports / ".DS_Store").write_bytes(b"\x00")
    return exports


def exported(home: Path) -> list[dict]:
    return [json.loads(x) for x in twin(home, "memory", "export").stdout.splitlines() if x]


def test_ingest_a_folder_of_exports_then_one_of_them_again(
    home: Path, persona_dir: Path, tmp_path: Path
) -> None:
    exports = exports_folder(tmp_path, persona_dir)

    result = twin(home, "ingest", str(exports))

    assert result.exit_code == 0, result.output
    assert "WhatsApp: Sam" in result.output and "Reef Watchers" in result.output
    assert "Left out 3:" in result.output
    assert f"{exports / 'empty.json'}:emptyfile" in "".join(result.output.split())
    assert f"{exports / 'sticker.webp'}: not a format twin recognises" in result.output
    assert f"{exports / '.DS_Store'}: hidden" in result.output
    rows = exported(home)
    assert {r["source"] for r in rows} == {"whatsapp:Sam", "discord:channel:1268833017133076541"}
    assert {r["kind"] for r in rows} == {"chat"}

    again = twin(home, "ingest", str(exports / "WhatsApp Chat with Sam.txt"))
    assert again.exit_code == 0, again.output
    assert len(exported(home)) == len(rows)


def test_a_folder_with_nothing_importable_is_an_error(home: Path, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "empty.json").write_text("")
    (exports / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0")

    result = twin(home, "ingest", str(exports))

    assert result.exit_code == 1
    assert "nothing to import" in result.output
    assert f"{exports / 'empty.json'}:emptyfile" in "".join(result.output.split())
    assert "Nothing was imported" in result.output
    empty = twin(home, "ingest", str(exports / "empty.json"))
    assert empty.exit_code == 1
    # rich wraps long lines at any width; compare with all whitespace left out
    assert f"{exports / 'empty.json'}:emptyfile" in "".join(empty.output.split())


def test_visibility_narrows_and_only_default_visibility_widens(
    home: Path, persona_dir: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    shutil.copytree(persona_dir / "notes" / "journal", notes / "journal")
    shutil.copy(persona_dir / "notes" / "reading-list.md", notes)  # says visibility: friends

    assert twin(home, "ingest", str(notes), "--visibility", "public").exit_code == 0
    by_note = {r["source"]: r["visibility"] for r in exported(home)}
    assert by_note.pop("notes:reading-list.md") == "friends"
    assert set(by_note.values()) == {"private"}, "--visibility never widens a note"

    chat = persona_dir / "whatsapp" / "WhatsApp Chat - Calder clan.txt"
    assert twin(home, "ingest", str(chat), "--visibility", "private").exit_code == 0
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "plans.md").write_text("# Plans\n\nMove to the coast next spring.\n")
    widened = twin(home, "ingest", str(plans), "--default-visibility", "friends")
    assert widened.exit_code == 0, widened.output
    rows = exported(home)
    assert {r["visibility"] for r in rows if r["source"].startswith("whatsapp:")} == {"private"}
    assert {r["visibility"] for r in rows if r["source"] == "notes:plans.md"} == {"friends"}


def test_chats_without_the_owners_messages_are_warned_about(home: Path, persona_dir: Path) -> None:
    (home / "twin.toml").write_text('[owner]\nname = "Iris"\n')  # she is "Iris Calder" there

    result = twin(home, "ingest", str(persona_dir / "whatsapp" / "WhatsApp Chat with Sam.txt"))

    assert result.exit_code == 0, result.output
    assert "warning: WhatsApp: Sam: none of its" in result.output
    assert "Iris Calder" in result.output
    assert f"owner.aliases (other names) or owner.ids (platform ids) in {home / 'twin.toml'}" in (
        " ".join(result.output.split())
    )


def test_chats_are_refused_while_the_owner_is_not_set(tmp_path: Path, persona_dir: Path) -> None:
    home = tmp_path / "no-init"
    chat = persona_dir / "whatsapp" / "WhatsApp Chat with Sam.txt"

    result = twin(home, "ingest", str(chat))

    assert result.exit_code == 1
    assert "your name is not set" in result.output
    assert "Nothing was imported" in result.output
    note = tmp_path / "idea.md"
    note.write_text("# Idea\n\nA tide-table app.\n")
    assert twin(home, "ingest", str(note)).exit_code == 0  # notes are yours anyway


def test_notes_above_the_size_limit_are_refused(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "small.md").write_text("# Small\n\nA short note.\n")
    (notes / "dump.txt").write_text("log line of a runaway program\n" * 40_000)  # 1.2 MB
    monkeypatch.setenv("TWIN_MEMORY__MAX_NOTE_MB", "1")

    named = twin(home, "ingest", str(notes / "dump.txt"))
    assert named.exit_code == 1
    assert "too large (1.1 MB; the limit for a text note is 1.0 MB)" in " ".join(
        named.output.split()
    )

    walked = twin(home, "ingest", str(notes))
    assert walked.exit_code == 0, walked.output
    assert f"{notes / 'dump.txt'}: too large" in walked.output
    assert "raise memory.max_note_mb or memory.max_file_mb" in " ".join(walked.output.split())
    assert {r["source"] for r in exported(home)} == {"notes:small.md"}


def test_ambiguous_whatsapp_dates_are_warned_about_and_can_be_given(
    home: Path, tmp_path: Path
) -> None:
    chat = tmp_path / "WhatsApp Chat with Ana.txt"
    chat.write_text("03/04/2025, 10:00 - Ana: hi\n05/04/2025, 11:00 - Iris Calder: hello\n")

    result = twin(home, "ingest", str(chat))
    assert result.exit_code == 0, result.output
    assert "warning: WhatsApp: Ana: no date in this chat tells day from month" in result.output
    assert "--whatsapp-dates month-first" in " ".join(result.output.split())
    assert {r["timestamp"][:10] for r in exported(home)} == {"2025-04-03", "2025-04-05"}

    other = tmp_path / "WhatsApp Chat with Rui.txt"
    other.write_text("03/04/2025, 10:00 - Rui: hi\n03/04/2025, 10:01 - Iris Calder: hey\n")
    given = twin(home, "ingest", str(other), "--whatsapp-dates", "month-first")
    assert given.exit_code == 0, given.output
    assert "warning" not in given.output
    rui = [r for r in exported(home) if r["source"] == "whatsapp:Rui"]
    assert [r["timestamp"][:10] for r in rui] == ["2025-03-04", "2025-03-04"]


def test_embedding_progress_is_logged_when_not_on_a_terminal(
    home: Path, persona_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chat = persona_dir / "whatsapp" / "WhatsApp Chat - Calder clan.txt"

    with caplog.at_level("INFO", logger="twin.progress"):
        result = twin(home, "ingest", str(chat))

    assert result.exit_code == 0, result.output
    lines = [r.getMessage() for r in caplog.records if r.name == "twin.progress"]
    assert lines[-1].startswith("Embedding WhatsApp: Calder clan: ")
    assert lines[-1].endswith("(100%)")


def test_a_notes_folder_copied_elsewhere_adds_nothing(
    home: Path, persona_dir: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "laptop" / "notes"
    shutil.copytree(persona_dir / "notes" / "journal", notes / "journal")
    assert twin(home, "ingest", str(notes)).exit_code == 0
    before = exported(home)

    copy = tmp_path / "new-laptop" / "Documents" / "notes"
    shutil.copytree(notes, copy)
    again = twin(home, "ingest", str(copy))

    assert again.exit_code == 0, again.output
    assert exported(home) == before
    assert {r["source"] for r in before} == {
        f"notes:journal/{p.name}" for p in (notes / "journal").iterdir()
    }


def test_broken_links_in_a_notes_folder_are_listed_not_raised(home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "kept.md").write_text("# Kept\n\nThe boat leaves at nine.\n")
    (notes / "moved.md").symlink_to(tmp_path / "gone" / "moved.md")
    (notes / "loop.md").symlink_to(notes / "loop.md")

    result = twin(home, "ingest", str(notes))

    assert result.exit_code == 0, result.output
    assert f"{notes / 'loop.md'}: symbolic link loop" in result.output
    assert f"{notes / 'moved.md'}: broken symbolic link (points to" in result.output
    assert {r["source"] for r in exported(home)} == {"notes:kept.md"}


def test_a_whatsapp_line_with_another_date_style_is_the_one_named(
    home: Path, tmp_path: Path
) -> None:
    chat = tmp_path / "WhatsApp Chat with Sam.txt"
    chat.write_text(
        "31/12/2023, 21:15 - Sam: hi\n31/12/2023, 21:16 - Iris Calder: hello\n"
        "2024-01-01, 00:00 - Sam: happy new year\n"
    )

    result = twin(home, "ingest", str(chat))

    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert "line 3: date '2024-01-01' is not written like the dates before it" in flat
    assert "Nothing was imported" in flat
