"""Telegram Desktop JSON exports: one chat's ``result.json`` or a whole account's.

A single-chat export is an object with ``name``, ``type``, ``id`` and ``messages``. A full
account export has ``chats`` (and ``left_chats``), each an object whose ``list`` holds such
chats. Either may be given as the ``result.json`` file or the folder that contains it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from memory.models import Kind, MemoryDraft, ParsedSource, SourceRef
from memory.sources.base import ImportFormatError, ImportOptions, load_json_export

PEEK_BYTES = 64 * 1024
RESULT_FILE = "result.json"
ACCOUNT_SECTIONS = ("chats", "left_chats")

# How tdesktop writes a message: "id", then "type", then "date". Used only when the head of a
# large file cannot be parsed as a whole.
_CHAT_HEAD = re.compile(r'"messages"\s*:\s*\[\s*(?:\]|\{\s*"id"\s*:\s*-?\d+\s*,\s*"type"\s*:)')
_ACCOUNT_HEAD = re.compile(
    r'^\{\s*"about"\s*:.*?"(?:personal_information|profile_pictures|contacts|'
    r'frequent_contacts|sessions|chats|left_chats)"\s*:',
    re.DOTALL,
)
# tdesktop's text for a file left out of the export, e.g. "(File not included. ...)".
_NOT_INCLUDED = "("


class TelegramImporter:
    """Reads Telegram Desktop's "Export chat history" / "Export Telegram data" JSON."""

    name = "telegram"

    def detect(self, path: Path) -> bool:
        """True for a Telegram JSON export, or a folder holding one as ``result.json``."""
        file = _export_file(path)
        if file is None:
            return False
        head, complete = _peek(file)
        if complete:
            try:
                return _is_telegram_document(json.loads(head))
            except ValueError:
                pass  # a damaged export is still recognised by its head, and parse says where
        return bool(_CHAT_HEAD.search(head) and '"guild"' not in head) or bool(
            _ACCOUNT_HEAD.search(head)
        )

    def parse(self, path: Path, options: ImportOptions) -> list[ParsedSource]:
        """One ParsedSource per chat in the export."""
        file = _export_file(path)
        if file is None:
            raise ImportFormatError(path, "", f"no {RESULT_FILE} here")
        data = load_json_export(file)
        if not isinstance(data, dict):
            raise ImportFormatError(file, "top level", "expected a JSON object")
        if "messages" in data:
            return [_parse_chat(file, "", data)]
        if not any(section in data for section in ACCOUNT_SECTIONS):
            raise ImportFormatError(
                file,
                "top level",
                "neither a chat export (no 'messages') nor an account export (no 'chats')",
            )
        parsed = []
        for section in ACCOUNT_SECTIONS:
            if section not in data:
                continue
            block = data[section]
            if not isinstance(block, dict) or not isinstance(block.get("list"), list):
                raise ImportFormatError(file, section, "expected an object with a 'list' of chats")
            for index, chat in enumerate(block["list"]):
                parsed.append(_parse_chat(file, f"{section}.list[{index}]", chat))
        return parsed


def _export_file(path: Path) -> Path | None:
    if path.is_dir():
        candidate = path / RESULT_FILE
        return candidate if candidate.is_file() else None
    return path if path.is_file() else None


def _peek(file: Path) -> tuple[str, bool]:
    """The first PEEK_BYTES of a file as text, and whether that is the whole file."""
    with file.open("rb") as handle:
        raw = handle.read(PEEK_BYTES + 1)
    complete = len(raw) <= PEEK_BYTES
    text = raw[:PEEK_BYTES].decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    return text, complete


def _is_telegram_document(data: Any) -> bool:
    if not isinstance(data, dict) or "guild" in data:
        return False
    messages = data.get("messages")
    if isinstance(messages, list):
        if not messages:
            return "type" in data and "id" in data
        first = messages[0]
        return isinstance(first, dict) and "type" in first and "date" in first
    return any(isinstance(data.get(section), dict) for section in ACCOUNT_SECTIONS)


def _at(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_chat(file: Path, where: str, chat: Any) -> ParsedSource:
    if not isinstance(chat, dict):
        raise ImportFormatError(file, where or "top level", "expected a chat object")
    chat_id = chat.get("id")
    if not _is_int(chat_id):
        raise ImportFormatError(
            file, _at(where, "id"), f"chat id must be an integer, got {chat_id!r}"
        )
    messages = chat.get("messages")
    if not isinstance(messages, list):
        raise ImportFormatError(file, _at(where, "messages"), "expected a list of messages")
    name = chat.get("name")
    if name is not None and not isinstance(name, str):
        raise ImportFormatError(file, _at(where, "name"), "chat name must be a string")
    if not name:
        name = "Saved Messages" if chat.get("type") == "saved_messages" else f"chat {chat_id}"

    key = f"telegram:chat:{chat_id}"
    drafts: list[MemoryDraft] = []
    skipped = 0
    for index, message in enumerate(messages):
        draft = _parse_message(file, _at(where, f"messages[{index}]"), message, key)
        if draft is None:
            skipped += 1
        else:
            drafts.append(draft)
    source = SourceRef(key=key, kind="telegram", name=f"Telegram: {name}", path=str(file))
    return ParsedSource(source=source, drafts=drafts, skipped=skipped)


def _parse_message(file: Path, where: str, message: Any, key: str) -> MemoryDraft | None:
    """The message as a draft, or None for what is left out (service, unsupported, empty)."""
    if not isinstance(message, dict):
        raise ImportFormatError(file, where, "expected a message object")
    message_id = message.get("id")
    if not _is_int(message_id):
        raise ImportFormatError(file, where, f"message has no integer 'id' (got {message_id!r})")
    where = f"{where} (message {message_id})"
    kind = message.get("type")
    if not isinstance(kind, str):
        raise ImportFormatError(file, where, "message has no 'type'")
    if kind == "unsupported":
        return None  # tdesktop writes only id and type for media it cannot export
    timestamp = _timestamp(file, where, message)
    if kind != "message":
        return None  # service messages: joins, calls, pins, title changes...

    text = _render_text(file, where, message).strip()
    media = _media(message)
    body = "\n".join(part for part in (text, media[1] if media else "") if part)
    if not body:
        return None

    meta: dict[str, str] = {}
    edited = _edited(message)
    if edited:
        meta["edited"] = edited
    forwarded_from = message.get("forwarded_from")
    if "forwarded_from" in message:
        meta["forwarded_from"] = str(forwarded_from) if forwarded_from else "unknown"
    if media:
        meta["media"] = media[0]
    if isinstance(message.get("via_bot"), str):
        meta["via_bot"] = message["via_bot"]

    reply_to = message.get("reply_to_message_id")
    # A reply to a message in another chat points at an id that means nothing here.
    reply_in_other_chat = "reply_to_peer_id" in message
    author = message.get("from")
    from_id = message.get("from_id")
    return MemoryDraft(
        text=body,
        kind=Kind.CHAT,
        source_id=str(message_id),
        author=author if isinstance(author, str) and author else None,
        author_id=f"telegram:{from_id}" if isinstance(from_id, str) and from_id else None,
        timestamp=timestamp,
        thread=key,
        reply_to=str(reply_to) if _is_int(reply_to) and not reply_in_other_chat else None,
        # A forward carries someone else's words, whoever sent it.
        is_owner=False if "forwarded_from" in message else None,
        meta=meta,
    )


def _timestamp(file: Path, where: str, message: dict[str, Any]) -> datetime:
    """When the message was sent, in UTC.

    ``date_unixtime`` is exact. Exports from before 2021 have only ``date``, the exporting
    machine's local time without an offset; it is then read as UTC.
    """
    unix = message.get("date_unixtime")
    if unix is not None:
        if _is_int(unix) or (isinstance(unix, str) and unix.isdigit()):
            return datetime.fromtimestamp(int(unix), UTC)
        raise ImportFormatError(file, where, f"bad date_unixtime {unix!r}")
    local = message.get("date")
    if local is None:
        raise ImportFormatError(file, where, "message has no date")
    if not isinstance(local, str):
        raise ImportFormatError(file, where, f"bad date {local!r}")
    try:
        moment = datetime.fromisoformat(local)
    except ValueError as exc:
        raise ImportFormatError(file, where, f"bad date {local!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _edited(message: dict[str, Any]) -> str:
    unix = message.get("edited_unixtime")
    if isinstance(unix, str) and unix.isdigit():
        return datetime.fromtimestamp(int(unix), UTC).isoformat()
    edited = message.get("edited")
    return edited if isinstance(edited, str) else ""


def _render_text(file: Path, where: str, message: dict[str, Any]) -> str:
    """The message text as plain text: entity objects become their text (links keep the URL)."""
    value = message.get("text")
    if value is None:
        value = message.get("text_entities", "")
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise ImportFormatError(file, where, "'text' must be a string or a list")
    parts = []
    for index, part in enumerate(value):
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
            href = part.get("href")
            if part.get("type") == "text_link" and isinstance(href, str) and href != part["text"]:
                parts.append(f" ({href})")
        else:
            raise ImportFormatError(
                file, f"{where}, text[{index}]", "expected a string or an object with 'text'"
            )
    return "".join(parts)


def _file_name(message: dict[str, Any]) -> str:
    name = message.get("file_name")
    if isinstance(name, str) and name:
        return name
    path = message.get("file")
    if isinstance(path, str) and path and not path.startswith(_NOT_INCLUDED):
        return PurePosixPath(path).name
    return ""


def _labelled(label: str, detail: str) -> str:
    return f"[{label}: {detail}]" if detail else f"[{label}]"


def _media(message: dict[str, Any]) -> tuple[str, str] | None:
    """What the message carries besides text, as (kind, short bracketed placeholder)."""
    media_type = message.get("media_type")
    if "photo" in message:
        return "photo", "[photo]"
    if media_type == "sticker":
        emoji = message.get("sticker_emoji")
        return "sticker", _labelled("sticker", emoji if isinstance(emoji, str) else "")
    if media_type in ("voice_message", "video_message"):
        return media_type, f"[{media_type.replace('_', ' ')}]"
    if media_type == "animation":
        return "animation", "[GIF]"
    if media_type == "video_file":
        return "video", _labelled("video", _file_name(message))
    if media_type == "audio_file":
        song = " – ".join(
            str(message[k]) for k in ("performer", "title") if isinstance(message.get(k), str)
        )
        return "audio", _labelled("audio", song or _file_name(message))
    if "file" in message or isinstance(media_type, str):
        return "file", _labelled("file", _file_name(message))
    if "location_information" in message or "place_name" in message:
        place = message.get("place_name")
        return "location", _labelled("location", place if isinstance(place, str) else "")
    contact = message.get("contact_information")
    if isinstance(contact, dict):
        who = " ".join(
            str(contact[k]) for k in ("first_name", "last_name") if contact.get(k)
        ).strip()
        return "contact", _labelled("contact", who)
    poll = message.get("poll")
    if isinstance(poll, dict):
        question = poll.get("question")
        return "poll", _labelled("poll", question if isinstance(question, str) else "")
    if isinstance(message.get("game_title"), str):
        return "game", _labelled("game", message["game_title"])
    return None
