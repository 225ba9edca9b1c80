"""Notes: Markdown with front matter and wiki links, plain text, PDF; structure-aware chunks."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime

import pytest

from memory.models import Kind, Visibility, content_hash
from memory.sources.base import ImportFormatError, ImportOptions
from memory.sources.notes import NotesImporter
from tests.memory.sources.conftest import pdf_bytes

DIVE_LOG = """\
---
title: Dive log — Arrábida
date: 2024-03-02
tags: [diving, portugal]
visibility: friends
---
Intro paragraph about the trip with [[Tomás]] and [[Marco Silva|Marco]].

![[boat.jpg]]

## Saturday

Water 15 °C, visibility 12 m. Saw a [[Nudibranchs#Flabellina|purple nudibranch]].

### Gear

Rented a 7 mm suit. See [[Gear list#Suits]].

## Sunday

```
# not a heading, just a comment in code
depth = 14
```

Too windy, stayed ashore.
"""


@pytest.fixture
def importer() -> NotesImporter:
    return NotesImporter()


def test_markdown_note_is_chunked_by_heading_with_breadcrumbs(importer, write_text):
    path = write_text("vault/dive.md", DIVE_LOG)

    [parsed] = importer.parse(path, ImportOptions())

    assert [d.text for d in parsed.drafts] == [
        "Dive log — Arrábida\nIntro paragraph about the trip with Tomás and Marco.",
        "Dive log — Arrábida › Saturday\nWater 15 °C, visibility 12 m. Saw a purple nudibranch.",
        "Dive log — Arrábida › Saturday › Gear\nRented a 7 mm suit. See Gear list > Suits.",
        "Dive log — Arrábida › Sunday\n"
        "```\n# not a heading, just a comment in code\ndepth = 14\n```\n\n"
        "Too windy, stayed ashore.",
    ]


def test_note_source_and_draft_fields(importer, write_text):
    path = write_text("vault/dive.md", DIVE_LOG)

    [parsed] = importer.parse(path, ImportOptions())

    key = "notes:dive.md"  # by its name, not where it is on disk
    assert parsed.source.key == key
    assert parsed.source.path == str(path.resolve())
    assert parsed.source.kind == "notes"
    assert parsed.source.name == "Dive log — Arrábida"
    assert parsed.replaces_missing is True
    assert parsed.skipped == 0
    gear = parsed.drafts[2]
    assert gear.kind is Kind.NOTE
    assert gear.is_owner is True
    assert gear.author is None
    assert gear.thread == key
    assert gear.source_id == content_hash(gear.text)[:16]
    assert gear.timestamp == datetime(2024, 3, 2, tzinfo=UTC)
    assert gear.visibility is Visibility.FRIENDS
    assert gear.meta == {
        "title": "Dive log — Arrábida",
        "tags": "diving,portugal",
        "heading": "Gear",
    }
    assert "heading" not in parsed.drafts[0].meta


def test_folder_is_read_recursively_skipping_hidden_and_other_files(importer, write_text, tmp_path):
    write_text("vault/dive.md", DIVE_LOG)
    write_text(
        "vault/trips/2023-11-05 Sesimbra.markdown", "# Sesimbra\n\nCalm sea, octopus at 9 m.\n"
    )
    write_text("vault/ideas.txt", "Buy a compass.\n\nLearn to read tide tables.\n")
    write_text("vault/.obsidian/workspace.md", "# hidden settings\n")
    write_text("vault/.git/notes.md", "# not mine\n")
    write_text("vault/.draft.md", "# hidden file\n")
    write_text("vault/data.json", "{}")
    (tmp_path / "vault" / "reef.pdf").write_bytes(
        pdf_bytes([["Coral cover 40%"]], title="Reef Survey")
    )

    parsed = importer.parse(tmp_path / "vault", ImportOptions())

    assert sorted(p.source.name for p in parsed) == [
        "Dive log — Arrábida",
        "Reef Survey",
        "Sesimbra",
        "ideas",
    ]
    assert sorted(p.source.key for p in parsed) == [
        "notes:dive.md",
        "notes:ideas.txt",
        "notes:reef.pdf",
        "notes:trips/2023-11-05 Sesimbra.markdown",
    ]
    sesimbra = next(p for p in parsed if p.source.name == "Sesimbra")
    assert sesimbra.drafts[0].text == "Sesimbra\nCalm sea, octopus at 9 m."
    assert sesimbra.drafts[0].timestamp == datetime(2023, 11, 5, tzinfo=UTC)
    ideas = next(p for p in parsed if p.source.name == "ideas")
    assert ideas.drafts[0].text == "ideas\nBuy a compass.\n\nLearn to read tide tables."


def test_timestamp_falls_back_to_the_file_mtime(importer, write_text):
    path = write_text("plain.md", "Just a thought.\n")
    os.utime(path, (1700000000, 1700000000))

    [parsed] = importer.parse(path, ImportOptions())

    assert parsed.drafts[0].timestamp == datetime.fromtimestamp(1700000000, UTC)
    assert parsed.drafts[0].visibility is None


def test_paragraphs_are_packed_and_only_a_long_paragraph_is_split_with_overlap(
    importer, write_text
):
    short = [f"Short paragraph number {n} about reefs." for n in range(6)]
    words = " ".join(f"word{n:03d}" for n in range(120))  # one paragraph of ~960 characters
    path = write_text("long.md", "\n\n".join([*short, words]) + "\n")
    options = ImportOptions(chunk_chars=200, chunk_overlap=40)

    [parsed] = importer.parse(path, options)
    bodies = [d.text.split("\n", 1)[1] for d in parsed.drafts]

    assert all(d.text.startswith("long\n") for d in parsed.drafts)
    assert all(len(d.text) <= 200 for d in parsed.drafts)
    packed = [b for b in bodies if "Short" in b]
    assert len(packed) < len(short)  # several short paragraphs share a chunk
    assert "\n\n".join(packed) == "\n\n".join(short)  # packed whole, nothing repeated
    pieces = [b for b in bodies if "word" in b]
    assert len(pieces) > 1
    for before, after in itertools.pairwise(pieces):
        assert before.split()[-1] in after.split()[:6]  # consecutive pieces overlap
    covered = {w for piece in pieces for w in piece.split()}
    assert covered == set(words.split())


def test_identical_chunks_in_one_note_collapse(importer, write_text):
    path = write_text("dup.md", "Same line.\n\n## A\n\nRepeat me.\n\n## A\n\nRepeat me.\n")

    [parsed] = importer.parse(path, ImportOptions())

    assert [d.text for d in parsed.drafts] == ["dup\nSame line.", "dup › A\nRepeat me."]


def test_empty_note_is_skipped(importer, write_text):
    path = write_text("empty.md", "---\ntitle: Nothing yet\n---\n\n   \n")

    [parsed] = importer.parse(path, ImportOptions())

    assert parsed.drafts == []
    assert parsed.skipped == 1
    assert parsed.replaces_missing is True  # a note emptied since the last import loses its chunks


def test_pdf_is_a_document_chunked_by_page(importer, tmp_path):
    path = tmp_path / "survey.pdf"
    path.write_bytes(
        pdf_bytes(
            [["Reef survey, March 2024", "Coral cover was 40%."], [], ["Next survey in June."]],
            title="Reef Survey",
        )
    )

    [parsed] = importer.parse(path, ImportOptions())

    assert parsed.source.name == "Reef Survey"
    assert [d.text for d in parsed.drafts] == [
        "Reef Survey › page 1\nReef survey, March 2024\nCoral cover was 40%.",
        "Reef Survey › page 3\nNext survey in June.",
    ]
    assert all(d.kind is Kind.DOCUMENT for d in parsed.drafts)
    assert parsed.drafts[1].meta["heading"] == "page 3"


def test_detect(importer, write_text, tmp_path):
    assert importer.detect(tmp_path)
    assert importer.detect(write_text("a.md", "# Hi\n"))
    assert importer.detect(write_text("b.txt", "Shopping list\n"))
    assert not importer.detect(write_text("c.txt", "31/12/2023, 21:15 - Sam: hi\n"))  # WhatsApp
    assert not importer.detect(write_text("d.json", "{}"))
    assert not importer.detect(tmp_path / "missing.md")


def assert_error(exc: pytest.ExceptionInfo[ImportFormatError], path, where: str) -> None:
    assert exc.value.path == str(path)
    assert exc.value.where == where
    assert str(path) in str(exc.value)


def test_invalid_visibility_names_file_and_line(importer, write_text):
    path = write_text("secret.md", "---\ntitle: Secret\nvisibility: everyone\n---\nText.\n")

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert_error(exc, path, "line 3")
    assert "private, friends, public" in exc.value.problem


def test_broken_yaml_names_the_line(importer, write_text):
    path = write_text("broken.md", "---\ntitle: Fine\ntags: [a, b\ndate: 2024-01-01\n---\nText.\n")

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert_error(exc, path, "line 4")  # where the unclosed list turns out to be broken
    assert exc.value.problem.startswith("bad front matter: expected ',' or ']'")


def test_unclosed_front_matter_and_bad_date_are_errors(importer, write_text):
    path = write_text("open.md", "---\ntitle: Never closed\n\nText.\n")
    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert_error(exc, path, "line 1")

    path = write_text("date.md", "---\ntitle: T\ndate: last spring\n---\nText.\n")
    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert_error(exc, path, "line 3")

    path = write_text("list.md", "---\n- just\n- a list\n---\nText.\n")
    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert_error(exc, path, "line 2")


def test_a_pdf_is_dated_by_its_creation_date_not_its_copy(importer, tmp_path):
    dated = tmp_path / "dated.pdf"
    dated.write_bytes(pdf_bytes([["Coral cover 40%"]], created="D:20240301120000+01'00'"))
    undated = tmp_path / "undated.pdf"
    undated.write_bytes(pdf_bytes([["Coral cover 40%"]], created="not a date"))
    for path in (dated, undated):
        os.utime(path, (1700000000, 1700000000))

    [from_metadata] = importer.parse(dated, ImportOptions())
    [from_mtime] = importer.parse(undated, ImportOptions())

    assert from_metadata.drafts[0].timestamp == datetime(2024, 3, 1, 11, 0, tzinfo=UTC)
    assert from_mtime.drafts[0].timestamp == datetime.fromtimestamp(1700000000, UTC)


def test_corrupt_pdf_is_an_error_naming_it(importer, tmp_path):
    whole = pdf_bytes([["Some text"]], title="Broken")
    path = tmp_path / "broken.pdf"
    path.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert exc.value.path == str(path)
    assert "PDF" in exc.value.problem


def test_a_bad_file_in_a_folder_fails_the_whole_parse(importer, write_text, tmp_path):
    write_text("vault/good.md", "Fine.\n")
    write_text("vault/bad.md", "---\nvisibility: secret\n---\nText.\n")

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(tmp_path / "vault", ImportOptions())
    assert exc.value.path.endswith("bad.md")


def test_non_utf8_text_is_an_error_with_its_line(importer, tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("first line\nsecond line café\n".encode("latin-1"))

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert_error(exc, path, "line 2")


def test_links_in_a_notes_folder_that_lead_nowhere_are_left_out_not_raised(
    importer, write_text, tmp_path, caplog
):
    write_text("vault/kept.md", "# Kept\n\nStill here.\n")
    (tmp_path / "vault" / "moved.md").symlink_to(tmp_path / "elsewhere" / "moved.md")
    (tmp_path / "vault" / "loop.md").symlink_to(tmp_path / "vault" / "loop.md")

    with caplog.at_level("WARNING", logger="memory.sources.notes"):
        parsed = importer.parse(tmp_path / "vault", ImportOptions())

    assert [p.source.key for p in parsed] == ["notes:kept.md"]
    logged = "\n".join(caplog.messages)
    assert "loop.md: symbolic link loop" in logged
    assert "moved.md: broken symbolic link" in logged


def test_a_note_is_named_relative_to_the_folder_it_was_found_in(importer, write_text, tmp_path):
    path = write_text("vault/journal/2024-03-02.md", "Calm day.\n")

    found = importer.parse_note(path, tmp_path / "vault", ImportOptions())
    alone = importer.parse_note(path, path.parent, ImportOptions())

    assert found.source.key == "notes:journal/2024-03-02.md"
    assert found.drafts[0].thread == "notes:journal/2024-03-02.md"
    assert alone.source.key == "notes:2024-03-02.md"
    assert found.source.path == alone.source.path == str(path.resolve())


def test_windows_line_ends_read_like_unix_ones(importer, write_text):
    unix = write_text("unix.md", DIVE_LOG)
    windows = write_text("windows.md", DIVE_LOG.replace("\n", "\r\n"))

    [a] = importer.parse(unix, ImportOptions())
    [b] = importer.parse(windows, ImportOptions())

    assert [d.text for d in a.drafts] == [d.text for d in b.drafts]
    assert a.drafts[0].visibility is b.drafts[0].visibility is Visibility.FRIENDS
