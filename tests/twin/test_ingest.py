"""From paths to stored memory: one chat is one source however it is reached, `--visibility`
only narrows, notes are the same notes wherever their folder is, and an owner nobody matches
is reported."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from memory.models import Visibility
from memory.sources import ImportFormatError, ImportOptions
from memory.sources.notes import NotesImporter
from memory.store import MemoryStore
from twin.config import Settings, load_settings
from twin.ingest import owner_unset, parse_paths, plan_import, store_parsed, unrecognised_owner

WHATSAPP = "WhatsApp Chat with Sam.txt"
DISCORD = "reef-watchers-general.json"


@pytest.fixture
def settings(tmp_path: Path, persona_dir: Path) -> Settings:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(persona_dir / "twin.toml", home / "twin.toml")
    return load_settings(home)


def ingest(store: MemoryStore, paths: list[Path], settings: Settings, **kwargs) -> dict:
    """Import `paths`; the reports by source key."""
    reports = {}
    for item in plan_import(paths, settings).parsed:
        for report in store_parsed(store, item, settings, **kwargs):
            reports[report.source_key] = report
    return reports


def added(reports: dict) -> int:
    return sum(report.added for report in reports.values())


def visibilities(store: MemoryStore) -> dict[str, set[Visibility]]:
    found: dict[str, set[Visibility]] = {}
    for memory in store.iter_memories():
        found.setdefault(memory.source_key, set()).add(memory.visibility)
    return found


def test_a_chat_found_in_a_folder_and_named_later_is_one_source(
    store: MemoryStore, settings: Settings, persona_dir: Path, tmp_path: Path
) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    shutil.copy(persona_dir / "whatsapp" / WHATSAPP, exports)
    shutil.copy(persona_dir / "discord" / DISCORD, exports)

    first = ingest(store, [exports], settings)
    assert sorted(first) == ["discord:channel:1268833017133076541", "whatsapp:Sam"]
    stored = store.count()

    again = ingest(store, [exports / WHATSAPP], settings)
    downloaded_twice = tmp_path / "Downloads" / "WhatsApp Chat with Sam (1).txt"
    downloaded_twice.parent.mkdir()
    shutil.copy(exports / WHATSAPP, downloaded_twice)
    copy = ingest(store, [downloaded_twice], settings)

    assert added(again) == added(copy) == 0
    assert again["whatsapp:Sam"].unchanged == first["whatsapp:Sam"].added
    assert store.count() == stored
    assert [ref.key for ref, _ in store.sources()] == sorted(first)
    sam = [m for m in store.iter_memories() if m.source_key == "whatsapp:Sam"]
    assert {m.kind for m in sam} == {"chat"}
    assert any(m.is_owner for m in sam) and not all(m.is_owner for m in sam)


def test_visibility_is_a_ceiling_and_only_the_default_flag_widens(
    store: MemoryStore, settings: Settings, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "journal.md").write_text("# Journal\n\nI told nobody about the new job yet.\n")
    (notes / "shared.md").write_text(
        "---\nvisibility: friends\n---\n# Shared\n\nThe dive trip is on the 14th.\n"
    )
    (notes / "blog.md").write_text("---\nvisibility: public\n---\n# Blog\n\nReefs are back.\n")

    ingest(store, [notes], settings, ceiling=Visibility.PUBLIC)
    assert visibilities(store) == {
        "notes:journal.md": {Visibility.PRIVATE},  # notes are private by default; never widened
        "notes:shared.md": {Visibility.FRIENDS},
        "notes:blog.md": {Visibility.PUBLIC},
    }

    narrowed = tmp_path / "narrowed"
    shutil.copytree(notes, narrowed)
    for note in narrowed.iterdir():
        note.write_text(note.read_text().replace("\n\n", "\n\nAnother copy. "))
    ingest(store, [narrowed], settings, ceiling=Visibility.FRIENDS)
    widened = tmp_path / "widened"
    widened.mkdir()
    (widened / "plans.md").write_text("# Plans\n\nMove to the coast next spring.\n")
    ingest(store, [widened], settings, default_visibility=Visibility.FRIENDS)

    seen = visibilities(store)
    assert seen["notes:blog.md#2"] == {Visibility.FRIENDS}  # capped
    assert seen["notes:journal.md#2"] == {Visibility.PRIVATE}
    assert seen["notes:plans.md"] == {Visibility.FRIENDS}  # widened only when asked


def test_a_copied_notes_folder_adds_nothing_and_a_moved_one_keeps_its_notes(
    store: MemoryStore, settings: Settings, persona_dir: Path, tmp_path: Path
) -> None:
    original = tmp_path / "laptop" / "notes"
    shutil.copytree(persona_dir / "notes" / "journal", original / "journal")
    shutil.copy(persona_dir / "notes" / "about-me.md", original)
    first = ingest(store, [original], settings)
    assert "notes:journal/2026-03-15.md" in first
    stored = store.count()

    backup = tmp_path / "backup" / "my notes"
    shutil.copytree(original, backup)
    copied = ingest(store, [backup], settings)
    assert added(copied) == 0
    assert sorted(copied) == sorted(first)
    assert store.count() == stored

    # the original is gone and one note was edited in the moved folder: still the same notes
    shutil.rmtree(original.parent)
    edited = backup / "journal" / "2026-03-15.md"
    edited.write_text(edited.read_text() + "\nAdded after the move: the boat was late.\n")
    moved = ingest(store, [backup], settings)
    assert sorted(moved) == sorted(first)
    assert moved["notes:journal/2026-03-15.md"].added >= 1
    assert sum(r.added for k, r in moved.items() if k != "notes:journal/2026-03-15.md") == 0
    paths = {ref.key: ref.path for ref, _ in store.sources()}
    assert paths["notes:journal/2026-03-15.md"] == str(edited.resolve())
    assert len(paths) == len(first)


def test_a_diverged_copy_is_its_own_note_and_leaves_the_original_alone(
    store: MemoryStore, settings: Settings, tmp_path: Path
) -> None:
    original = tmp_path / "a" / "todo.md"
    original.parent.mkdir()
    original.write_text("# Todo\n\nBuy new fins.\n\nBook the boat for Saturday.\n")
    ingest(store, [original.parent], settings)
    copy = tmp_path / "b" / "todo.md"
    copy.parent.mkdir()
    copy.write_text(original.read_text() + "\nCall the dentist.\n")

    reports = ingest(store, [copy.parent], settings)
    again = ingest(store, [original.parent, copy.parent], settings)

    assert sorted(reports) == ["notes:todo.md#2"]
    assert added(again) == 0 and sum(r.removed for r in again.values()) == 0
    texts = {m.source_key: m.text for m in store.iter_memories() if "dentist" in m.text}
    assert list(texts) == ["notes:todo.md#2"]


def test_notes_keyed_by_their_absolute_path_in_an_older_home_still_match(
    store: MemoryStore, settings: Settings, persona_dir: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    shutil.copytree(persona_dir / "notes" / "life", notes)
    # what the importer wrote before notes were named relative to their folder
    for parsed in NotesImporter().parse(notes, ImportOptions()):
        key = f"notes:{parsed.source.path}"
        legacy = replace(
            parsed,
            source=replace(parsed.source, key=key),
            drafts=[replace(d, thread=key) for d in parsed.drafts],
        )
        store.ingest(legacy, visibility=Visibility.PRIVATE, fmt="notes")
    stored = store.count()
    legacy_keys = sorted(ref.key for ref, _ in store.sources())

    again = ingest(store, [notes], settings)
    elsewhere = tmp_path / "copied" / "life"
    shutil.copytree(notes, elsewhere)
    copied = ingest(store, [elsewhere], settings)

    assert added(again) == added(copied) == 0
    assert sorted(again) == sorted(copied) == legacy_keys
    assert store.count() == stored


def test_chats_in_which_nobody_is_the_owner_are_named(
    settings: Settings, persona_dir: Path, tmp_path: Path
) -> None:
    paths = [persona_dir / "whatsapp" / WHATSAPP, persona_dir / "notes" / "about-me.md"]
    parsed = plan_import(paths, settings).parsed
    assert unrecognised_owner(parsed, settings.owner.identity()) == []

    stranger = settings.model_copy(
        update={
            "owner": settings.owner.model_copy(
                update={"name": "Someone Else", "aliases": [], "ids": {}}
            )
        }
    )
    (missing,) = unrecognised_owner(parsed, stranger.owner.identity())
    assert missing.source == "WhatsApp: Sam"
    assert set(missing.authors) == {"Sam", "Iris Calder"}
    assert str(missing).startswith("WhatsApp: Sam: none of its")

    assert not owner_unset(settings)
    assert owner_unset(load_settings(tmp_path / "no-config"))


def test_a_broken_export_in_a_folder_stops_the_plan_before_anything_is_stored(
    settings: Settings, persona_dir: Path, tmp_path: Path
) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    shutil.copy(persona_dir / "whatsapp" / WHATSAPP, exports)
    broken = exports / DISCORD
    text = (persona_dir / "discord" / DISCORD).read_text()
    broken.write_text(text[: len(text) // 2])

    with pytest.raises(ImportFormatError) as exc:
        plan_import([exports], settings)
    assert exc.value.path == str(broken)


def test_parse_paths_logs_what_it_left_out(
    settings: Settings, persona_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    shutil.copy(persona_dir / "whatsapp" / WHATSAPP, exports)
    (exports / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0")

    with caplog.at_level("WARNING", logger="twin.ingest"):
        parsed = parse_paths([exports], settings)

    assert [item.format for item in parsed] == ["whatsapp"]
    assert "photo.jpg: not a format twin recognises" in caplog.text
