"""Discovery: files and folders given to import become import units, detected by content; what
is left out is listed with the reason, and a path with nothing to import is an error."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from memory.sources import (
    ImportFormatError,
    ImportOptions,
    NothingToImport,
    SkipReason,
    find_imports,
)

WHATSAPP = "WhatsApp Chat with Sam.txt"
DISCORD = "reef-watchers-general.json"


@pytest.fixture
def exports(tmp_path: Path, persona_dir: Path) -> Path:
    """A folder of the persona's chat exports and one note, as a user would collect them."""
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(persona_dir / "whatsapp" / WHATSAPP, folder)
    shutil.copy(persona_dir / "discord" / DISCORD, folder)
    (folder / "journal").mkdir()
    shutil.copy(persona_dir / "notes" / "journal" / "2026-03-15.md", folder / "journal")
    return folder


def reasons(found) -> dict[str, SkipReason]:
    return {record.path.name: record.reason for record in found.skipped}


def test_every_file_of_a_folder_is_detected_by_content(exports: Path) -> None:
    found = find_imports([exports], ImportOptions())

    # a folder's own files first, then its subfolders
    assert [(unit.path.name, unit.format) for unit in found.units] == [
        (WHATSAPP, "whatsapp"),
        (DISCORD, "discord"),
        ("2026-03-15.md", "notes"),
    ]
    assert {unit.root for unit in found.units} == {exports}
    assert found.skipped == []
    sources = [source for unit in found.units for source in unit.parse(ImportOptions())]
    assert [source.source.key for source in sources] == [
        "whatsapp:Sam",
        "discord:channel:1268833017133076541",
        "notes:journal/2026-03-15.md",
    ]
    assert sources[0].drafts[0].is_owner is None  # a chat, not a note the owner wrote


def test_a_folder_holding_only_a_discord_export_is_that_export(exports: Path) -> None:
    (exports / WHATSAPP).unlink()
    shutil.rmtree(exports / "journal")

    found = find_imports([exports], ImportOptions())

    assert [unit.format for unit in found.units] == ["discord"]


def test_what_is_left_out_of_a_folder_is_listed_with_the_reason(exports: Path) -> None:
    (exports / ".DS_Store").write_bytes(b"\x00\x01")
    (exports / ".obsidian").mkdir()
    (exports / ".obsidian" / "workspace.md").write_text("# settings\n")
    (exports / "empty.json").write_text("")
    (exports / "blank.md").write_text("\n  \n")
    (exports / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 a photo")
    (exports / "data.json").write_text('{"items": [1, 2, 3]}')
    (exports / "dangling.md").symlink_to(exports / "gone.md")
    (exports / "loop-a.md").symlink_to(exports / "loop-b.md")
    (exports / "loop-b.md").symlink_to(exports / "loop-a.md")
    (exports / "journal" / "up").symlink_to(exports)
    (exports / "again.txt").symlink_to(exports / WHATSAPP)
    os.mkfifo(exports / "pipe.txt")

    found = find_imports([exports], ImportOptions())

    assert [unit.format for unit in found.units] == ["whatsapp", "discord", "notes"]
    assert reasons(found) == {
        ".DS_Store": SkipReason.HIDDEN,
        ".obsidian": SkipReason.HIDDEN,
        "again.txt": SkipReason.DUPLICATE,
        "blank.md": SkipReason.EMPTY,
        "dangling.md": SkipReason.DANGLING_LINK,
        "data.json": SkipReason.UNRECOGNISED,
        "empty.json": SkipReason.EMPTY,
        "loop-a.md": SkipReason.SYMLINK_LOOP,
        "loop-b.md": SkipReason.SYMLINK_LOOP,
        "photo.jpg": SkipReason.UNRECOGNISED,
        "pipe.txt": SkipReason.NOT_A_FILE,
        "up": SkipReason.SYMLINK_LOOP,
    }
    details = {record.path.name: str(record) for record in found.skipped}
    assert details["dangling.md"].endswith(f"broken symbolic link (points to {exports}/gone.md)")
    assert details["up"].endswith(f"symbolic link loop (leads back to {exports})")
    assert details["again.txt"].endswith(f"same file as {exports / WHATSAPP})")


def test_a_folder_reached_through_a_link_is_walked_once(exports: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").symlink_to(exports / "journal")

    found = find_imports([exports, tmp_path / "elsewhere"], ImportOptions())

    assert [unit.path.name for unit in found.units].count("2026-03-15.md") == 1
    assert [record.reason for record in found.skipped] == [SkipReason.DUPLICATE]


def test_size_limits_refuse_large_notes_and_large_exports(exports: Path) -> None:
    (exports / "huge.md").write_text("A line of a very long note.\n" * 2000)  # 56 kB
    options = ImportOptions(max_note_bytes=52_429, max_file_bytes=400_000)

    found = find_imports([exports], options)

    assert [unit.format for unit in found.units] == ["whatsapp", "discord", "notes"]
    assert reasons(found) == {"huge.md": SkipReason.TOO_LARGE}
    assert "0.053 MB; the limit for a text note is 0.05 MB" in str(found.skipped[0])

    with pytest.raises(NothingToImport) as exc:
        find_imports([exports / DISCORD], ImportOptions(max_file_bytes=100_000))
    assert exc.value.path == str(exports / DISCORD)
    assert "too large" in exc.value.problem and "the limit for a file" in exc.value.problem


def test_a_folder_with_nothing_to_import_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    with pytest.raises(NothingToImport, match="the folder is empty"):
        find_imports([folder], ImportOptions())

    (folder / "empty.json").write_text("")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0")
    with pytest.raises(NothingToImport) as exc:
        find_imports([folder], ImportOptions())
    assert exc.value.path == str(folder)
    assert exc.value.problem == (
        "nothing to import: 2 files or folders left out: 1 empty file, "
        "1 not a format twin recognises"
    )
    assert [record.path.name for record in exc.value.skipped] == ["empty.json", "photo.jpg"]


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p.write_text(""), "empty file"),
        (lambda p: p.write_text(" \n\t\n"), "empty file"),
        (lambda p: p.symlink_to(p.parent / "gone.json"), "broken symbolic link (points to"),
        (lambda p: p.symlink_to(p), "symbolic link loop"),
        (lambda p: p.write_text('{"items": []}'), "not a format twin recognises"),
        (lambda p: None, "no such file or folder"),
    ],
)
def test_a_named_file_that_cannot_be_imported_is_an_error(tmp_path: Path, make, problem) -> None:
    path = tmp_path / "export.json"
    make(path)

    with pytest.raises(NothingToImport) as exc:
        find_imports([path], ImportOptions())
    assert exc.value.path == str(path)
    assert exc.value.problem.startswith(problem)
    assert str(path) in str(exc.value)


def test_the_same_file_named_and_inside_a_folder_is_read_once(exports: Path) -> None:
    found = find_imports([exports / WHATSAPP, exports], ImportOptions())

    assert [unit.path.name for unit in found.units].count(WHATSAPP) == 1
    assert reasons(found) == {WHATSAPP: SkipReason.DUPLICATE}


def test_a_forced_format_reads_named_files_without_detection_and_filters_folders(
    exports: Path, tmp_path: Path
) -> None:
    found = find_imports([exports], ImportOptions(), fmt="whatsapp")
    assert [unit.path.name for unit in found.units] == [WHATSAPP]
    assert {record.path.name: record.detail for record in found.skipped} == {
        "2026-03-15.md": "not a whatsapp file",
        DISCORD: "not a whatsapp file",
    }

    chat = tmp_path / "chat.log"
    chat.write_text("31/12/2023, 21:15 - Sam: hi\n")
    (unit,) = find_imports([chat], ImportOptions(), fmt="whatsapp").units
    assert unit.format == "whatsapp"


def test_a_file_that_claims_a_format_but_is_broken_is_an_error_not_a_skip(
    exports: Path,
) -> None:
    text = (exports / DISCORD).read_text()
    (exports / DISCORD).write_text(text[: len(text) // 2])

    found = find_imports([exports], ImportOptions())
    unit = next(unit for unit in found.units if unit.format == "discord")

    with pytest.raises(ImportFormatError) as exc:
        unit.parse(ImportOptions())
    assert exc.value.path == str(exports / DISCORD)
    assert "invalid JSON" in exc.value.problem
