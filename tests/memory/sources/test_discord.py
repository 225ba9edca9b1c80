"""DiscordChatExporter JSON: channels, threads, DMs, system messages and damaged files."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memory.models import Kind
from memory.sources.base import ImportFormatError, ImportOptions
from memory.sources.discord import DiscordImporter

ANA = {
    "id": "100000000000000001",
    "name": "ana.reyes",
    "discriminator": "0000",
    "nickname": "Ana 🐙",
    "color": "#1ABC9C",
    "isBot": False,
    "avatarUrl": "https://cdn.discordapp.com/embed/avatars/0.png",
}
MARCO = {
    "id": "100000000000000002",
    "name": "marco",
    "discriminator": "0000",
    "nickname": "marco",
    "color": None,
    "isBot": False,
    "avatarUrl": "https://cdn.discordapp.com/embed/avatars/1.png",
}
TIDEBOT = {
    "id": "100000000000000003",
    "name": "TideBot",
    "discriminator": "4821",
    "nickname": "TideBot",
    "color": None,
    "isBot": True,
    "avatarUrl": "https://cdn.discordapp.com/embed/avatars/2.png",
}


def message(
    message_id: str, kind: str, timestamp: str, author: dict, content: str, **extra
) -> dict:
    """A message with every field DiscordChatExporter writes."""
    return {
        "id": message_id,
        "type": kind,
        "timestamp": timestamp,
        "timestampEdited": None,
        "callEndedTimestamp": None,
        "isPinned": False,
        "content": content,
        "author": author,
        "attachments": [],
        "embeds": [],
        "stickers": [],
        "reactions": [],
        "mentions": [],
        **extra,
    }


def channel_export() -> dict:
    return {
        "guild": {
            "id": "900000000000000001",
            "name": "Reef Watchers",
            "iconUrl": "https://cdn.example/icon.png",
        },
        "channel": {
            "id": "910000000000000001",
            "type": "GuildTextChat",
            "categoryId": "920000000000000001",
            "category": "Text Channels",
            "name": "general",
            "topic": "Everything reef",
        },
        "dateRange": {"after": None, "before": None},
        "messages": [
            message("1001", "GuildMemberJoin", "2024-03-01T08:59:00+00:00", MARCO, ""),
            message(
                "1002",
                "Default",
                "2024-03-01T10:00:00.123+01:00",
                ANA,
                "Saw a nudibranch at 14 m 🐚",
                isPinned=True,
                timestampEdited="2024-03-01T10:05:00+01:00",
                reactions=[
                    {
                        "emoji": {"id": "", "name": "😍", "isAnimated": False, "imageUrl": ""},
                        "count": 2,
                    }
                ],
            ),
            message(
                "1003",
                "Reply",
                "2024-03-01T09:01:00+00:00",
                MARCO,
                "Which species?",
                reference={
                    "messageId": "1002",
                    "channelId": "910000000000000001",
                    "guildId": "900000000000000001",
                },
            ),
            message(
                "1004",
                "Default",
                "2024-03-01T09:02:00+00:00",
                ANA,
                "",
                attachments=[
                    {
                        "id": "5001",
                        "url": "https://cdn.discordapp.com/attachments/1/5001/nudi.jpg",
                        "fileName": "nudi.jpg",
                        "fileSizeBytes": 204800,
                    }
                ],
            ),
            message(
                "1005",
                "Default",
                "2024-03-01T09:03:00+00:00",
                MARCO,
                "https://fish.example/flabellina",
                embeds=[
                    {
                        "title": "Flabellina affinis",
                        "url": "https://fish.example/flabellina",
                        "timestamp": None,
                        "description": "A purple nudibranch",
                        "images": [],
                        "fields": [],
                    }
                ],
            ),
            message(
                "1006",
                "Default",
                "2024-03-01T09:04:00+00:00",
                ANA,
                "",
                stickers=[
                    {
                        "id": "7001",
                        "name": "Wave",
                        "format": "Apng",
                        "sourceUrl": "https://x/7001.png",
                    }
                ],
            ),
            message(
                "1007",
                "ChannelPinnedMessage",
                "2024-03-01T09:05:00+00:00",
                ANA,
                "Pinned a message.",
                reference={"messageId": "1002", "channelId": "910000000000000001", "guildId": None},
            ),
            message(
                "1008", "Default", "2024-03-01T09:06:00+00:00", TIDEBOT, "High tide 11:42 (3.1 m)"
            ),
            message("1009", "ThreadCreated", "2024-03-01T09:07:00+00:00", ANA, "Dive plan"),
            message(
                "1010",
                "Call",
                "2024-03-01T09:08:00+00:00",
                MARCO,
                "",
                callEndedTimestamp="2024-03-01T09:20:00+00:00",
            ),
            message("1011", "Default", "2024-03-01T09:09:00+00:00", MARCO, "   "),
        ],
        "messageCount": 11,
    }


@pytest.fixture
def importer() -> DiscordImporter:
    return DiscordImporter()


def test_channel_export_becomes_one_source(importer, write_json):
    path = write_json("Reef Watchers - general [910000000000000001].json", channel_export())

    [parsed] = importer.parse(path, ImportOptions())

    assert parsed.source.key == "discord:channel:910000000000000001"
    assert parsed.source.kind == "discord"
    assert parsed.source.name == "Discord: Reef Watchers #general"
    assert parsed.source.path == str(path)
    assert [d.source_id for d in parsed.drafts] == ["1002", "1003", "1004", "1005", "1006", "1008"]
    # join, pin notice, thread created, call, and a blank message are left out
    assert parsed.skipped == 5


def test_message_fields_follow_the_conventions(importer, write_json):
    [parsed] = importer.parse(write_json("general.json", channel_export()), ImportOptions())
    by_id = {d.source_id: d for d in parsed.drafts}

    first = by_id["1002"]
    assert first.kind is Kind.CHAT
    assert first.text == "Saw a nudibranch at 14 m 🐚"
    assert first.author == "Ana 🐙"  # the server nickname
    assert first.author_id == "discord:100000000000000001"
    assert first.timestamp == datetime(2024, 3, 1, 9, 0, 0, 123000, tzinfo=UTC)
    assert first.thread == "discord:channel:910000000000000001"
    assert first.meta["pinned"] == "true"
    assert first.meta["edited"] == "2024-03-01T09:05:00+00:00"
    assert first.is_owner is None

    assert by_id["1003"].reply_to == "1002"
    assert by_id["1003"].author == "marco"
    assert by_id["1005"].reply_to is None


def test_attachments_embeds_and_stickers_become_placeholders(importer, write_json):
    [parsed] = importer.parse(write_json("general.json", channel_export()), ImportOptions())
    by_id = {d.source_id: d for d in parsed.drafts}

    assert by_id["1004"].text == "[attachment: nudi.jpg]"
    assert by_id["1004"].meta["media"] == "attachment"
    assert by_id["1005"].text == "https://fish.example/flabellina\n[embed: Flabellina affinis]"
    assert by_id["1006"].text == "[sticker: Wave]"


def test_bots_are_kept_but_never_the_owner(importer, write_json):
    [parsed] = importer.parse(write_json("general.json", channel_export()), ImportOptions())
    bot = next(d for d in parsed.drafts if d.source_id == "1008")

    assert bot.meta["bot"] == "true"
    assert bot.is_owner is False
    assert bot.author == "TideBot"


def test_thread_export_is_its_own_source_named_after_its_parent(importer, write_json):
    export = channel_export()
    export["channel"] = {
        "id": "930000000000000001",
        "type": "GuildPublicThread",
        "categoryId": "910000000000000001",
        "category": "general",
        "name": "Dive plan",
        "topic": None,
    }
    export["messages"] = [
        message("2001", "Default", "2024-03-02T07:00:00+00:00", ANA, "Meet 6:30 at the pier")
    ]

    [parsed] = importer.parse(write_json("thread.json", export), ImportOptions())

    assert parsed.source.key == "discord:channel:930000000000000001"
    assert parsed.source.name == "Discord: Reef Watchers #general › Dive plan"
    assert parsed.drafts[0].thread == "discord:channel:930000000000000001"


def test_direct_messages_are_named_after_the_other_person(importer, write_json):
    export = channel_export()
    export["guild"] = {
        "id": "0",
        "name": "Direct Messages",
        "iconUrl": "https://cdn.discordapp.com/embed/avatars/0.png",
    }
    export["channel"] = {
        "id": "940000000000000001",
        "type": "DirectTextChat",
        "categoryId": "0",
        "category": "Private",
        "name": "marco",
        "topic": None,
    }

    [parsed] = importer.parse(write_json("dm.json", export), ImportOptions())

    assert parsed.source.name == "Discord: DM with marco"


def test_detect(importer, write_json, tmp_path):
    assert importer.detect(write_json("a.json", channel_export()))
    assert not importer.detect(
        write_json("b.json", {"name": "x", "type": "personal_chat", "id": 1, "messages": []})
    )
    assert not importer.detect(tmp_path)
    assert not importer.detect(tmp_path / "missing.json")


def test_truncated_json_names_the_line(importer, write_json):
    path = write_json("general.json", channel_export())
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) * 2 // 3], encoding="utf-8")

    assert importer.detect(path)
    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert exc.value.path == str(path)
    assert exc.value.where.startswith("line ")
    assert str(path) in str(exc.value)


def test_message_without_id_is_reported(importer, write_json):
    export = channel_export()
    del export["messages"][2]["id"]
    path = write_json("general.json", export)

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert exc.value.path == str(path)
    assert exc.value.where == "messages[2]"


def test_bad_timestamp_is_reported_with_the_message_id(importer, write_json):
    export = channel_export()
    export["messages"][3]["timestamp"] = "last tuesday"
    path = write_json("general.json", export)

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert exc.value.where == "messages[3] (message 1004)"
    assert "last tuesday" in exc.value.problem


def test_wrong_types_are_reported(importer, write_json):
    export = channel_export()
    export["messages"][1]["attachments"] = "nudi.jpg"
    with pytest.raises(ImportFormatError) as exc:
        importer.parse(write_json("a.json", export), ImportOptions())
    assert exc.value.where == "messages[1] (message 1002)"
    assert "attachments" in exc.value.problem

    export = channel_export()
    export["channel"]["id"] = 910000000000000001
    with pytest.raises(ImportFormatError) as exc:
        importer.parse(write_json("b.json", export), ImportOptions())
    assert exc.value.where == "channel.id"

    export = channel_export()
    export["messages"][1]["author"] = "ana"
    with pytest.raises(ImportFormatError) as exc:
        importer.parse(write_json("c.json", export), ImportOptions())
    assert "author" in exc.value.problem
