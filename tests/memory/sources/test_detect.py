"""Format detection: each export goes to its importer, unknown files are refused."""

from __future__ import annotations

import pytest

from memory.sources import (
    IMPORTERS,
    ImportFormatError,
    ImportOptions,
    detect_format,
    get_importer,
)
from tests.memory.sources.conftest import pdf_bytes

TELEGRAM_CHAT = {
    "name": "Tomás",
    "type": "personal_chat",
    "id": 4242,
    "messages": [
        {
            "id": 1,
            "type": "message",
            "date": "2024-03-01T09:01:40",
            "date_unixtime": "1709283700",
            "from": "Tomás",
            "from_id": "user222222",
            "text": "hola",
            "text_entities": [{"type": "plain", "text": "hola"}],
        }
    ],
}
TELEGRAM_ACCOUNT = {
    "about": "Here is the data you requested.",
    "personal_information": {"user_id": 1, "first_name": "Ana"},
    "chats": {"about": "This page lists all chats from this export.", "list": [TELEGRAM_CHAT]},
}
DISCORD_CHANNEL = {
    "guild": {"id": "1", "name": "Reef Watchers", "iconUrl": ""},
    "channel": {
        "id": "2",
        "type": "GuildTextChat",
        "categoryId": "3",
        "category": "Text",
        "name": "general",
        "topic": None,
    },
    "dateRange": {"after": None, "before": None},
    "messages": [
        {
            "id": "10",
            "type": "Default",
            "timestamp": "2024-03-01T09:00:00+00:00",
            "timestampEdited": None,
            "callEndedTimestamp": None,
            "isPinned": False,
            "content": "hi",
            "author": {
                "id": "5",
                "name": "ana",
                "discriminator": "0000",
                "nickname": "Ana",
                "isBot": False,
            },
            "attachments": [],
            "embeds": [],
            "stickers": [],
            "reactions": [],
            "mentions": [],
        }
    ],
    "messageCount": 1,
}


def test_registry_names_every_importer():
    assert sorted(IMPORTERS) == ["discord", "notes", "telegram", "whatsapp"]
    assert get_importer("whatsapp").name == "whatsapp"
    with pytest.raises(ValueError, match="known formats"):
        get_importer("icq")


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("chat/result.json", TELEGRAM_CHAT, "telegram"),
        ("account/result.json", TELEGRAM_ACCOUNT, "telegram"),
        ("Reef Watchers - general [2].json", DISCORD_CHANNEL, "discord"),
        # named like the other format: content decides, not the file name
        ("discord.json", TELEGRAM_CHAT, "telegram"),
        ("result.json", DISCORD_CHANNEL, "discord"),
    ],
)
def test_json_exports_are_detected_by_content(write_json, name, data, expected):
    assert detect_format(write_json(name, data)).name == expected


def test_telegram_export_folder_is_telegram_and_other_folders_are_notes(
    write_json, write_text, tmp_path
):
    write_json("export/result.json", TELEGRAM_ACCOUNT)
    write_text("vault/idea.md", "# Idea\n")

    assert detect_format(tmp_path / "export").name == "telegram"
    assert detect_format(tmp_path / "vault").name == "notes"


def test_text_files_are_whatsapp_or_notes(write_text, tmp_path):
    android = write_text("WhatsApp Chat with Sam.txt", "31/12/2023, 21:15 - Sam: hi\n")
    ios = write_text(
        "_chat.txt",
        "\u200e[31/12/2023, 21:15:03] Sam: \u200eMessages and calls are end-to-end encrypted.\n",
    )
    plain = write_text("todo.txt", "Refill the tank\n")
    markdown = write_text("dive.md", "# Dive\n\n31/12/2023, 21:15 - Sam: quoted chat line\n")
    pdf = tmp_path / "survey.pdf"
    pdf.write_bytes(pdf_bytes([["Coral cover 40%"]]))

    assert detect_format(android).name == "whatsapp"
    assert detect_format(ios).name == "whatsapp"
    assert detect_format(plain).name == "notes"
    assert detect_format(markdown).name == "notes"
    assert detect_format(pdf).name == "notes"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("data.json", '{"items": [1, 2, 3]}'),
        ("photo.jpg", "\xff\xd8\xff\xe0 not really a jpeg"),
        ("export.csv", "date,author,text\n2024-01-01,Sam,hi\n"),
    ],
)
def test_unknown_formats_are_refused(write_text, name, content):
    path = write_text(name, content)

    with pytest.raises(ImportFormatError) as exc:
        detect_format(path)
    assert exc.value.path == str(path)
    assert "not a format" in exc.value.problem


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(ImportFormatError, match="no such file"):
        detect_format(tmp_path / "nowhere.json")


@pytest.mark.parametrize("content", ["", "\n  \n", "\ufeff"])
def test_an_empty_file_is_called_empty(write_text, content):
    path = write_text("export.json", content)

    with pytest.raises(ImportFormatError) as exc:
        detect_format(path)
    assert exc.value.path == str(path)
    assert exc.value.problem == "empty file"


def test_broken_links_are_named_for_what_they_are(tmp_path):
    dangling = tmp_path / "note.md"
    dangling.symlink_to(tmp_path / "moved-away.md")
    loop = tmp_path / "loop.md"
    loop.symlink_to(loop)

    with pytest.raises(ImportFormatError, match=r"broken symbolic link \(points to .*moved-away"):
        detect_format(dangling)
    with pytest.raises(ImportFormatError, match="symbolic link loop"):
        detect_format(loop)


@pytest.mark.parametrize("importer", ["discord", "telegram"])
def test_parsing_an_empty_json_export_says_it_is_empty(write_text, importer):
    path = write_text("export.json", " \n")

    with pytest.raises(ImportFormatError) as exc:
        get_importer(importer).parse(path, ImportOptions())
    assert exc.value.path == str(path)
    assert exc.value.problem == "empty file"
