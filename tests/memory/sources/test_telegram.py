"""Telegram Desktop JSON exports: single chats, full account exports, and damaged files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memory.models import Kind
from memory.sources.base import ImportFormatError, ImportOptions
from memory.sources.telegram import TelegramImporter

OWNER_ID = "user111111"
TOMAS_ID = "user222222"


def message(message_id: int, unixtime: int, **fields: object) -> dict[str, object]:
    """A message as tdesktop writes one: id, type, date, date_unixtime, then the rest."""
    local = datetime.fromtimestamp(unixtime, UTC).replace(tzinfo=None).isoformat()
    return {
        "id": message_id,
        "type": "message",
        "date": local,
        "date_unixtime": str(unixtime),
        **fields,
    }


def tomas_chat() -> dict[str, object]:
    """A personal chat with every kind of message the importer must handle."""
    return {
        "name": "Tomás",
        "type": "personal_chat",
        "id": 4242,
        "messages": [
            {
                "id": 1,
                "type": "service",
                "date": "2024-03-01T09:00:00",
                "date_unixtime": "1709283600",
                "actor": "Tomás",
                "actor_id": TOMAS_ID,
                "action": "phone_call",
                "duration_seconds": 65,
                "discard_reason": "hangup",
                "text": "",
                "text_entities": [],
            },
            message(
                2,
                1709283700,
                **{
                    "from": "Tomás",
                    "from_id": TOMAS_ID,
                    "text": "¿Vienes al arrecife el sábado? 🐠",
                    "text_entities": [
                        {"type": "plain", "text": "¿Vienes al arrecife el sábado? 🐠"}
                    ],
                },
            ),
            message(
                3,
                1709283760,
                **{
                    "from": "Ana Reyes",
                    "from_id": OWNER_ID,
                    "reply_to_message_id": 2,
                    "edited": "2024-03-01T09:05:00",
                    "edited_unixtime": "1709283900",
                    "text": [
                        "Yes! ",
                        {"type": "bold", "text": "Saturday 7am"},
                        ", see ",
                        {
                            "type": "text_link",
                            "text": "the tide table",
                            "href": "https://tides.example/lis",
                        },
                        " and ask ",
                        {"type": "mention", "text": "@marco_dive"},
                    ],
                    "text_entities": [
                        {"type": "plain", "text": "Yes! "},
                        {"type": "bold", "text": "Saturday 7am"},
                        {"type": "plain", "text": ", see "},
                        {
                            "type": "text_link",
                            "text": "the tide table",
                            "href": "https://tides.example/lis",
                        },
                        {"type": "plain", "text": " and ask "},
                        {"type": "mention", "text": "@marco_dive"},
                    ],
                },
            ),
            message(
                4,
                1709283800,
                **{
                    "from": "Tomás",
                    "from_id": TOMAS_ID,
                    "photo": "photos/photo_1@01-03-2024_09-03-20.jpg",
                    "width": 1280,
                    "height": 960,
                    "text": "the boat",
                    "text_entities": [{"type": "plain", "text": "the boat"}],
                },
            ),
            message(
                5,
                1709283810,
                **{
                    "from": "Tomás",
                    "from_id": TOMAS_ID,
                    "file": "(File not included. Change data exporting settings to download.)",
                    "media_type": "sticker",
                    "sticker_emoji": "👍",
                    "width": 512,
                    "height": 512,
                    "text": "",
                    "text_entities": [],
                },
            ),
            message(
                6,
                1709283820,
                **{
                    "from": "Ana Reyes",
                    "from_id": OWNER_ID,
                    "file": "voice_messages/audio_1@01-03-2024_09-03-40.ogg",
                    "media_type": "voice_message",
                    "mime_type": "audio/ogg",
                    "duration_seconds": 7,
                    "text": "",
                    "text_entities": [],
                },
            ),
            message(
                7,
                1709283830,
                **{
                    "from": "Tomás",
                    "from_id": TOMAS_ID,
                    "file": "files/report.pdf",
                    "file_name": "report.pdf",
                    "mime_type": "application/pdf",
                    "text": "",
                    "text_entities": [],
                },
            ),
            message(
                8,
                1709283840,
                **{
                    "from": "Ana Reyes",
                    "from_id": OWNER_ID,
                    "forwarded_from": "Lisbon Divers",
                    "text": "Visibility 12 m at Arrábida today",
                    "text_entities": [
                        {"type": "plain", "text": "Visibility 12 m at Arrábida today"}
                    ],
                },
            ),
            # A message with nothing left in it (its poll or game was not exported).
            message(
                9,
                1709283850,
                **{"from": "Tomás", "from_id": TOMAS_ID, "text": "", "text_entities": []},
            ),
            message(
                10,
                1709283860,
                **{
                    "from": "Tomás",
                    "from_id": TOMAS_ID,
                    "text": "שלום and مرحبا — see you there",
                    "text_entities": [{"type": "plain", "text": "שלום and مرحبا — see you there"}],
                },
            ),
            {"id": 11, "type": "unsupported"},
        ],
    }


@pytest.fixture
def importer() -> TelegramImporter:
    return TelegramImporter()


def test_single_chat_export_becomes_one_source_with_its_messages(importer, write_json):
    path = write_json("result.json", tomas_chat())

    [parsed] = importer.parse(path, ImportOptions())

    assert parsed.source.key == "telegram:chat:4242"
    assert parsed.source.kind == "telegram"
    assert parsed.source.name == "Telegram: Tomás"
    assert parsed.source.path == str(path)
    assert not parsed.replaces_missing
    # service (1), empty (9) and unsupported (11) are left out
    assert [d.source_id for d in parsed.drafts] == ["2", "3", "4", "5", "6", "7", "8", "10"]
    assert parsed.skipped == 3


def test_message_fields_follow_the_conventions(importer, write_json):
    [parsed] = importer.parse(write_json("result.json", tomas_chat()), ImportOptions())
    by_id = {d.source_id: d for d in parsed.drafts}

    first = by_id["2"]
    assert first.kind is Kind.CHAT
    assert first.text == "¿Vienes al arrecife el sábado? 🐠"
    assert first.author == "Tomás"
    assert first.author_id == "telegram:user222222"
    assert first.timestamp == datetime(2024, 3, 1, 9, 1, 40, tzinfo=UTC)
    assert first.thread == "telegram:chat:4242"
    assert first.reply_to is None
    assert first.is_owner is None  # decided later from the owner's identity

    reply = by_id["3"]
    assert reply.reply_to == "2"
    assert reply.text == (
        "Yes! Saturday 7am, see the tide table (https://tides.example/lis) and ask @marco_dive"
    )
    assert reply.meta["edited"] == "2024-03-01T09:05:00+00:00"

    assert by_id["10"].text == "שלום and مرحبا — see you there"


def test_media_become_placeholders_after_any_caption(importer, write_json):
    [parsed] = importer.parse(write_json("result.json", tomas_chat()), ImportOptions())
    by_id = {d.source_id: d for d in parsed.drafts}

    assert by_id["4"].text == "the boat\n[photo]"
    assert by_id["4"].meta["media"] == "photo"
    assert by_id["5"].text == "[sticker: 👍]"
    assert by_id["6"].text == "[voice message]"
    assert by_id["7"].text == "[file: report.pdf]"
    assert by_id["7"].meta["media"] == "file"


def test_forwarded_words_are_not_the_senders(importer, write_json):
    [parsed] = importer.parse(write_json("result.json", tomas_chat()), ImportOptions())
    forwarded = next(d for d in parsed.drafts if d.source_id == "8")

    assert forwarded.meta["forwarded_from"] == "Lisbon Divers"
    assert forwarded.is_owner is False
    assert forwarded.author_id == "telegram:user111111"


def test_text_entities_are_used_when_text_is_absent(importer, write_json):
    chat = {
        "name": "Notes to self",
        "type": "saved_messages",
        "id": 1,
        "messages": [
            message(
                5,
                1700000000,
                **{
                    "from": "Ana",
                    "from_id": OWNER_ID,
                    "text_entities": [
                        {"type": "plain", "text": "buy "},
                        {"type": "hashtag", "text": "#fins"},
                    ],
                },
            )
        ],
    }
    [parsed] = importer.parse(write_json("result.json", chat), ImportOptions())

    assert parsed.drafts[0].text == "buy #fins"


def test_old_exports_without_unixtime_read_the_local_date_as_utc(importer, write_json):
    chat = {
        "name": "Old",
        "type": "personal_chat",
        "id": 9,
        "messages": [
            {
                "id": 1,
                "type": "message",
                "date": "2019-06-01T12:30:00",
                "from": "A",
                "from_id": "user1",
                "text": "hi",
            }
        ],
    }
    [parsed] = importer.parse(write_json("result.json", chat), ImportOptions())

    assert parsed.drafts[0].timestamp == datetime(2019, 6, 1, 12, 30, tzinfo=UTC)


def full_account_export() -> dict[str, object]:
    return {
        "about": "Here is the data you requested. Remember: Telegram is ad free...",
        "personal_information": {"user_id": 111111, "first_name": "Ana", "last_name": "Reyes"},
        "chats": {
            "about": "This page lists all chats from this export.",
            "list": [
                tomas_chat(),
                {
                    "type": "saved_messages",
                    "id": 111111,
                    "messages": [
                        message(
                            1,
                            1700000000,
                            **{
                                "from": "Ana Reyes",
                                "from_id": OWNER_ID,
                                "text": "passport in blue bag",
                            },
                        )
                    ],
                },
            ],
        },
        "left_chats": {
            "about": "This page lists all supergroups and channels you've left.",
            "list": [
                {
                    "name": "Surf Lisboa",
                    "type": "public_supergroup",
                    "id": 1500100,
                    "messages": [
                        {
                            "id": 77,
                            "type": "service",
                            "date": "2022-01-01T10:00:00",
                            "date_unixtime": "1641031200",
                            "actor": "Ana Reyes",
                            "actor_id": OWNER_ID,
                            "action": "join_group_by_link",
                            "inviter": "Group",
                            "text": "",
                            "text_entities": [],
                        },
                        message(
                            78,
                            1641031300,
                            **{"from": "Rui", "from_id": "user333", "text": "Waves 2m tomorrow"},
                        ),
                    ],
                },
            ],
        },
    }


def test_full_account_export_gives_one_source_per_chat(importer, write_json):
    path = write_json("export/result.json", full_account_export())

    parsed = importer.parse(path, ImportOptions())

    assert [p.source.key for p in parsed] == [
        "telegram:chat:4242",
        "telegram:chat:111111",
        "telegram:chat:1500100",
    ]
    assert [p.source.name for p in parsed] == [
        "Telegram: Tomás",
        "Telegram: Saved Messages",
        "Telegram: Surf Lisboa",
    ]
    assert parsed[1].drafts[0].text == "passport in blue bag"
    assert [d.text for d in parsed[2].drafts] == ["Waves 2m tomorrow"]
    assert parsed[2].skipped == 1


def test_a_folder_holding_result_json_is_read(importer, write_json):
    path = write_json("export/result.json", full_account_export())

    assert importer.detect(path.parent)
    assert len(importer.parse(path.parent, ImportOptions())) == 3


def test_detect_accepts_telegram_and_rejects_other_json(importer, write_json, tmp_path):
    assert importer.detect(write_json("a/result.json", tomas_chat()))
    assert importer.detect(write_json("b/result.json", full_account_export()))
    assert not importer.detect(write_json("c.json", {"guild": {}, "channel": {}, "messages": []}))
    assert not importer.detect(write_json("d.json", {"items": [1, 2]}))
    assert not importer.detect(tmp_path / "missing.json")
    assert not importer.detect(tmp_path)  # a folder without result.json


def test_detect_reads_only_the_head_of_a_large_export(importer, write_json):
    chat = tomas_chat()
    filler = message(100, 1709290000, **{"from": "Tomás", "from_id": TOMAS_ID, "text": "x" * 1000})
    chat["messages"] = [*chat["messages"], *[dict(filler, id=100 + i) for i in range(100)]]
    path = write_json("big/result.json", chat)

    assert path.stat().st_size > 64 * 1024
    assert importer.detect(path)


def assert_error(exc: pytest.ExceptionInfo[ImportFormatError], path: Path, where: str) -> None:
    assert exc.value.path == str(path)
    assert where in exc.value.where
    assert str(path) in str(exc.value)


def test_truncated_json_names_the_line(importer, tmp_path):
    text = json.dumps(tomas_chat(), ensure_ascii=False, indent=1)
    path = tmp_path / "result.json"
    path.write_text(text[: len(text) // 2], encoding="utf-8")

    assert importer.detect(path)  # recognised by its head, so the user hears what is wrong
    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert_error(exc, path, "line ")
    assert "invalid JSON" in exc.value.problem


def test_message_without_id_is_reported_with_its_json_path(importer, write_json):
    chat = tomas_chat()
    del chat["messages"][2]["id"]
    path = write_json("result.json", chat)

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert_error(exc, path, "messages[2]")
    assert "'id'" in exc.value.problem


def test_message_without_date_is_reported_with_its_id(importer, write_json):
    chat = tomas_chat()
    del chat["messages"][3]["date"]
    del chat["messages"][3]["date_unixtime"]
    path = write_json("result.json", chat)

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert_error(exc, path, "messages[3] (message 4)")
    assert "no date" in exc.value.problem


def test_bad_date_is_reported(importer, write_json):
    chat = tomas_chat()
    chat["messages"][1]["date_unixtime"] = "yesterday"
    path = write_json("result.json", chat)

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert_error(exc, path, "messages[1] (message 2)")
    assert "yesterday" in exc.value.problem


def test_wrong_types_are_reported(importer, write_json):
    chat = tomas_chat()
    chat["messages"][1]["text"] = ["fine", 42]
    with pytest.raises(ImportFormatError) as exc:
        importer.parse(write_json("a.json", chat), ImportOptions())
    assert "text[1]" in exc.value.where

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(
            write_json("b.json", {"name": "x", "type": "personal_chat", "id": "7", "messages": []}),
            ImportOptions(),
        )
    assert exc.value.where == "id"

    account = full_account_export()
    account["chats"]["list"][1]["messages"] = {"not": "a list"}
    with pytest.raises(ImportFormatError) as exc:
        importer.parse(write_json("c.json", account), ImportOptions())
    assert exc.value.where == "chats.list[1].messages"

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(write_json("d.json", [1, 2, 3]), ImportOptions())
    assert exc.value.where == "top level"
