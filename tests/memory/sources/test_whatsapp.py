"""WhatsApp .txt exports from Android and iOS, in day-first and month-first locales."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memory.models import Kind
from memory.sources.base import DateOrder, ImportFormatError, ImportOptions
from memory.sources.whatsapp import WhatsAppImporter, chat_name

LRM = "\u200e"
NNBSP = "\u202f"
ENCRYPTED = (
    "Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp,"
    " can read or listen to them. Tap to learn more."
)

ANDROID_DAY_FIRST = f"""\
31/12/2023, 21:10 - {ENCRYPTED}
31/12/2023, 21:15 - Sam: Happy new year almost! 🎆
31/12/2023, 21:16 - Ana Reyes: Same to you!
Shall we dive on the 2nd?

The forecast looks calm.
31/12/2023, 21:17 - Sam: <Media omitted>
31/12/2023, 21:18 - Sam: IMG-20231231-WA0003.jpg (file attached)
the reef at sunset
31/12/2023, 21:19 - Sam: This message was deleted
31/12/2023, 21:20 - Ana Reyes: ok, 8:00 at the pier <This message was edited>
31/12/2023, 21:21 - Sam: 👍
31/12/2023, 21:21 - Sam: 👍
31/12/2023, 21:22 - Ana Reyes: You deleted this message
31/12/2023, 21:23 - Your security code with Sam changed. Tap to learn more.
"""

ANDROID_MONTH_FIRST_GROUP = f"""\
12/31/23, 9:14 PM - {ENCRYPTED}
12/31/23, 9:15 PM - Sam created group "Trip: Lisbon"
12/31/23, 9:15 PM - Sam added Ana Reyes
12/31/23, 9:16{NNBSP}PM - Sam: hi all
1/2/24, 10:05{NNBSP}AM - Ana Reyes: boat leaves at 10:30
1/2/24, 12:01 AM - Sam: just after midnight
1/2/24, 12:30 PM - Rui left
"""

IOS_DAY_FIRST = (
    f"{LRM}[31/12/2023, 21:15:03] Sam: {LRM}Messages and calls are end-to-end encrypted. "
    "No one outside of this chat, not even WhatsApp, can read or listen to them.\r\n"
    "[31/12/2023, 21:15:10] Sam: Feliz año nuevo 🎉\r\n"
    "[31/12/2023, 21:15:20] Ana Reyes: line one\r\n"
    "line two\r\n"
    f"{LRM}[31/12/2023, 21:16:00] Sam: {LRM}image omitted\r\n"
    f"{LRM}[31/12/2023, 21:16:30] Sam: {LRM}<attached: 00000012-PHOTO-2023-12-31-21-16-30.jpg>\r\n"
    "[31/12/2023, 21:17:00] \u202a+351 912 345 678\u202c: who is this?\r\n"
    f"{LRM}[31/12/2023, 21:18:00] Sam: {LRM}This message was deleted.\r\n"
    f"[31/12/2023, 21:19:00] Ana Reyes: see you {LRM}<This message was edited>\r\n"
)


@pytest.fixture
def importer() -> WhatsAppImporter:
    return WhatsAppImporter()


def test_android_chat_becomes_one_source(importer, write_text):
    path = write_text("WhatsApp Chat with Sam.txt", ANDROID_DAY_FIRST)

    [parsed] = importer.parse(path, ImportOptions())

    assert parsed.source.key == "whatsapp:Sam"
    assert parsed.source.kind == "whatsapp"
    assert parsed.source.name == "WhatsApp: Sam"
    assert parsed.source.path == str(path)
    assert [d.text for d in parsed.drafts] == [
        "Happy new year almost! 🎆",
        "Same to you!\nShall we dive on the 2nd?\n\nThe forecast looks calm.",
        "[media]",
        "[file: IMG-20231231-WA0003.jpg]\nthe reef at sunset",
        "ok, 8:00 at the pier",
        "👍",
        "👍",
    ]
    # encryption notice, two deletions, security code notice
    assert parsed.skipped == 4


def test_android_message_fields(importer, write_text):
    [parsed] = importer.parse(
        write_text("WhatsApp Chat with Sam.txt", ANDROID_DAY_FIRST), ImportOptions()
    )
    first, second, media, _, edited, *_ = parsed.drafts

    assert first.kind is Kind.CHAT
    assert first.author == "Sam"
    assert first.author_id is None
    assert first.timestamp == datetime(2023, 12, 31, 21, 15, tzinfo=UTC)
    assert first.thread == "whatsapp:Sam"
    assert first.is_owner is None
    assert second.author == "Ana Reyes"
    assert media.meta["media"] == "media"
    assert edited.meta["edited"] == "true"


def test_identical_messages_get_distinct_ids_that_survive_a_longer_export(importer, write_text):
    [before] = importer.parse(
        write_text("WhatsApp Chat with Sam.txt", ANDROID_DAY_FIRST), ImportOptions()
    )
    thumbs = [d.source_id for d in before.drafts if d.text == "👍"]
    assert len(set(thumbs)) == 2

    longer = (
        ANDROID_DAY_FIRST + "01/01/2024, 00:00 - Sam: 👍\n01/01/2024, 00:01 - Sam: Feliz 2024!\n"
    )
    [after] = importer.parse(
        write_text("later/WhatsApp Chat with Sam.txt", longer), ImportOptions()
    )

    assert [d.source_id for d in after.drafts[: len(before.drafts)]] == [
        d.source_id for d in before.drafts
    ]
    assert len({d.source_id for d in after.drafts}) == len(after.drafts)


def test_month_first_group_with_12_hour_times(importer, write_text):
    path = write_text("WhatsApp Chat with Trip Lisbon.txt", ANDROID_MONTH_FIRST_GROUP)

    [parsed] = importer.parse(path, ImportOptions())

    assert [(d.author, d.text, d.timestamp) for d in parsed.drafts] == [
        ("Sam", "hi all", datetime(2023, 12, 31, 21, 16, tzinfo=UTC)),
        ("Ana Reyes", "boat leaves at 10:30", datetime(2024, 1, 2, 10, 5, tzinfo=UTC)),
        ("Sam", "just after midnight", datetime(2024, 1, 2, 0, 1, tzinfo=UTC)),
    ]
    # encryption notice, 'created group "Trip: Lisbon"' (a colon in a quote), added, left
    assert parsed.skipped == 4


def test_ambiguous_dates_are_read_day_first(importer, write_text):
    path = write_text("chat.txt", "01/02/2024, 10:00 - Sam: hi\n03/02/2024, 11:00 - Ana: hello\n")

    [parsed] = importer.parse(path, ImportOptions())

    assert [d.timestamp for d in parsed.drafts] == [
        datetime(2024, 2, 1, 10, 0, tzinfo=UTC),
        datetime(2024, 2, 3, 11, 0, tzinfo=UTC),
    ]
    assert parsed.source.key == "whatsapp:chat"


def test_ios_export_with_marks_seconds_and_attachments(importer, write_text):
    path = write_text("WhatsApp Chat - Sam/_chat.txt", IOS_DAY_FIRST)

    [parsed] = importer.parse(path, ImportOptions())

    assert parsed.source.key == "whatsapp:Sam"
    assert [(d.author, d.text) for d in parsed.drafts] == [
        ("Sam", "Feliz año nuevo 🎉"),
        ("Ana Reyes", "line one\nline two"),
        ("Sam", "[photo]"),
        ("Sam", "[photo: 00000012-PHOTO-2023-12-31-21-16-30.jpg]"),
        ("+351 912 345 678", "who is this?"),
        ("Ana Reyes", "see you"),
    ]
    assert parsed.drafts[0].timestamp == datetime(2023, 12, 31, 21, 15, 10, tzinfo=UTC)
    assert parsed.drafts[3].meta["media"] == "photo"
    assert parsed.drafts[-1].meta["edited"] == "true"
    assert parsed.skipped == 2  # encryption notice, deleted message


def test_ios_month_first_with_seconds_and_am_pm(importer, write_text):
    text = f"[12/31/23, 9:15:03{NNBSP}PM] Sam: hi\n[1/1/24, 8:00:00{NNBSP}AM] Ana: morning\n"

    [parsed] = importer.parse(write_text("c.txt", text), ImportOptions())

    assert [d.timestamp for d in parsed.drafts] == [
        datetime(2023, 12, 31, 21, 15, 3, tzinfo=UTC),
        datetime(2024, 1, 1, 8, 0, 0, tzinfo=UTC),
    ]


def test_chat_names_come_from_the_file_name(tmp_path):
    assert chat_name(tmp_path / "WhatsApp Chat with Sam.txt") == "Sam"
    assert chat_name(tmp_path / "WhatsApp Chat - Dive Club" / "_chat.txt") == "Dive Club"
    assert chat_name(tmp_path / "sam-2024.txt") == "sam-2024"


def test_detect(importer, write_text, tmp_path):
    assert importer.detect(write_text("a.txt", ANDROID_DAY_FIRST))
    assert importer.detect(write_text("b.txt", IOS_DAY_FIRST))
    assert importer.detect(write_text("c.txt", "\n\n" + ANDROID_MONTH_FIRST_GROUP))
    assert not importer.detect(write_text("d.txt", "Shopping list\n- fins\n- mask\n"))
    assert not importer.detect(write_text("e.md", ANDROID_DAY_FIRST))
    assert not importer.detect(tmp_path)


def test_empty_file_is_an_error(importer, write_text):
    path = write_text("empty.txt", "\n\n")

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert exc.value.path == str(path)
    assert exc.value.where == "line 1"


def test_first_line_that_is_not_a_message_is_an_error_with_its_line(importer, write_text):
    path = write_text("notes.txt", "\nChat with Sam, exported\n31/12/2023, 21:15 - Sam: hi\n")

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert exc.value.path == str(path)
    assert exc.value.where == "line 2"
    assert str(path) in str(exc.value)


def test_impossible_date_is_an_error_with_its_line(importer, write_text):
    path = write_text("bad.txt", "31/12/2023, 21:15 - Sam: hi\n31/13/2023, 21:16 - Sam: hm\n")

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert exc.value.where == "line 2"
    assert "day-first" in exc.value.problem


def test_impossible_time_is_an_error_with_its_line(importer, write_text):
    path = write_text(
        "bad.txt", "31/12/2023, 21:15 - Sam: hi\nand more\n31/12/2023, 25:16 - Sam: hm\n"
    )

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert exc.value.where == "line 3"


def test_ambiguous_dates_carry_a_warning_saying_what_was_assumed(importer, write_text):
    path = write_text("chat.txt", "03/04/2025, 10:00 - Sam: hi\n05/04/2025, 11:00 - Ana: hello\n")

    [parsed] = importer.parse(path, ImportOptions())

    assert parsed.drafts[0].timestamp == datetime(2025, 4, 3, 10, 0, tzinfo=UTC)
    (warning,) = parsed.warnings
    assert "read day first, so '03/04/2025' is 3 April 2025" in warning


def test_the_date_order_can_be_given_for_a_chat_that_cannot_tell(importer, write_text):
    path = write_text("chat.txt", "03/04/2025, 10:00 - Sam: hi\n05/04/2025, 11:00 - Ana: hello\n")

    [parsed] = importer.parse(path, ImportOptions(date_order=DateOrder.MONTH_FIRST))

    assert [d.timestamp for d in parsed.drafts] == [
        datetime(2025, 3, 4, 10, 0, tzinfo=UTC),
        datetime(2025, 5, 4, 11, 0, tzinfo=UTC),
    ]
    assert parsed.warnings == ()


def test_a_chat_whose_dates_tell_is_read_their_way_without_a_warning(importer, write_text):
    text = "03/04/2025, 10:00 - Sam: hi\n25/04/2025, 11:00 - Ana: hello\n"

    # the file says day-first (25 is no month); a given order is only for chats that cannot tell
    [parsed] = importer.parse(
        write_text("chat.txt", text), ImportOptions(date_order=DateOrder.MONTH_FIRST)
    )

    assert parsed.drafts[0].timestamp == datetime(2025, 4, 3, 10, 0, tzinfo=UTC)
    assert parsed.warnings == ()


def test_a_later_line_with_another_date_style_is_the_one_blamed(importer, write_text):
    path = write_text(
        "chat.txt",
        "31/12/2023, 21:15 - Sam: hi\n31/12/2023, 21:16 - Ana: hello\n"
        "2024-01-01, 00:00 - Sam: happy new year\n",
    )

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert exc.value.where == "line 3"
    assert "'2024-01-01' is not written like the dates before it" in exc.value.problem
    assert "line 1: '31/12/2023', with the year last" in exc.value.problem


def test_dates_that_contradict_each_other_name_both_lines(importer, write_text):
    path = write_text(
        "chat.txt",
        "01/02/2024, 10:00 - Sam: hi\n13/02/2024, 10:00 - Sam: day first\n"
        "02/14/2024, 10:00 - Ana: month first\n",
    )

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert exc.value.where == "line 3"
    assert exc.value.problem.startswith(
        "'02/14/2024' can only be month-first, but line 2 ('13/02/2024') can only be day-first"
    )


def test_non_utf8_is_an_error_with_its_line(importer, tmp_path):
    path = tmp_path / "chat.txt"
    path.write_bytes("31/12/2023, 21:15 - Sam: hi\n31/12/2023, 21:16 - Sam: olá\n".encode("cp1252"))

    with pytest.raises(ImportFormatError) as exc:
        importer.parse(path, ImportOptions())
    assert exc.value.where == "line 2"
    assert exc.value.problem == "not UTF-8 text"


def test_a_second_download_of_a_chat_is_the_same_chat(tmp_path):
    assert chat_name(tmp_path / "WhatsApp Chat with Sam (1).txt") == "Sam"
    assert chat_name(tmp_path / "WhatsApp Chat - Dive Club (2)" / "_chat.txt") == "Dive Club"
