"""DiscordChatExporter JSON exports: one channel (or thread, or DM) per file.

The file is an object with ``guild``, ``channel``, ``dateRange`` and ``messages``; each message
has ``id``, ``type``, ``timestamp``, ``timestampEdited``, ``isPinned``, ``content``,
``author`` {id, name, nickname, isBot}, ``attachments``, ``embeds``, ``stickers`` and, for
replies, ``reference`` {messageId}.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memory.models import Kind, MemoryDraft, ParsedSource, SourceRef
from memory.sources.base import ImportFormatError, ImportOptions, load_json_export

PEEK_BYTES = 64 * 1024

# Message types people write. Everything else (GuildMemberJoin, ChannelPinnedMessage,
# ThreadCreated, RecipientAdd, Call, ...) is a system notice. DiscordChatExporter writes types it
# has no name for as their number: 20 and 23 are replies to slash and context-menu commands.
KEPT_TYPES = frozenset({"Default", "Reply", "ChatInputCommand", "ContextMenuCommand", "20", "23"})
THREAD_CHANNEL_TYPES = frozenset({"GuildPublicThread", "GuildPrivateThread", "GuildNewsThread"})
DIRECT_CHANNEL_TYPES = frozenset({"DirectTextChat", "DirectGroupTextChat"})

_HEAD_KEYS = (
    re.compile(r'^\{\s*"guild"\s*:\s*\{'),
    re.compile(r'"channel"\s*:\s*\{'),
    re.compile(r'"messages"\s*:\s*\['),
)


class DiscordImporter:
    """Reads the JSON that DiscordChatExporter writes for a channel, thread or DM."""

    name = "discord"

    def detect(self, path: Path) -> bool:
        """True for a JSON file that starts like a DiscordChatExporter export."""
        if not path.is_file():
            return False
        with path.open("rb") as handle:
            head = handle.read(PEEK_BYTES).decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
        # The preamble (guild, channel, date range) is short, so the three keys are in the head.
        return all(pattern.search(head) for pattern in _HEAD_KEYS)

    def parse(self, path: Path, options: ImportOptions) -> list[ParsedSource]:
        """The channel in the file, as one ParsedSource."""
        data = load_json_export(path)
        if not isinstance(data, dict):
            raise ImportFormatError(path, "top level", "expected a JSON object")
        guild = _object(path, data, "guild")
        channel = _object(path, data, "channel")
        channel_id = _string(path, "channel.id", channel.get("id"))
        channel_name = _string(path, "channel.name", channel.get("name"))
        guild_name = guild.get("name") if isinstance(guild.get("name"), str) else ""
        messages = data.get("messages")
        if not isinstance(messages, list):
            raise ImportFormatError(path, "messages", "expected a list of messages")

        key = f"discord:channel:{channel_id}"
        drafts: list[MemoryDraft] = []
        skipped = 0
        for index, message in enumerate(messages):
            draft = _parse_message(path, f"messages[{index}]", message, key)
            if draft is None:
                skipped += 1
            else:
                drafts.append(draft)
        source = SourceRef(
            key=key,
            kind="discord",
            name=_source_name(guild_name, channel, channel_name),
            path=str(path),
        )
        return [ParsedSource(source=source, drafts=drafts, skipped=skipped)]


def _object(file: Path, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ImportFormatError(file, key, "expected an object")
    return value


def _string(file: Path, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ImportFormatError(file, where, f"expected a non-empty string, got {value!r}")
    return value


def _source_name(guild_name: str, channel: dict[str, Any], channel_name: str) -> str:
    kind = channel.get("type")
    if kind == "DirectTextChat":
        return f"Discord: DM with {channel_name}"
    if kind == "DirectGroupTextChat":
        return f"Discord: {channel_name}"
    parent = channel.get("category")
    if kind in THREAD_CHANNEL_TYPES and isinstance(parent, str) and parent:
        # For a thread or forum post the exporter's "category" is the parent channel.
        return f"Discord: {guild_name} #{parent} › {channel_name}"
    return f"Discord: {guild_name} #{channel_name}"


def _timestamp(file: Path, where: str, field: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise ImportFormatError(file, where, f"'{field}' must be a date string, got {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ImportFormatError(file, where, f"bad {field} {value!r}") from exc
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_message(file: Path, where: str, message: Any, key: str) -> MemoryDraft | None:
    """The message as a draft, or None for a system notice or a message with nothing in it."""
    if not isinstance(message, dict):
        raise ImportFormatError(file, where, "expected a message object")
    message_id = message.get("id")
    if not isinstance(message_id, str) or not message_id.isdigit():
        raise ImportFormatError(file, where, f"message has no snowflake 'id' (got {message_id!r})")
    where = f"{where} (message {message_id})"
    kind = message.get("type")
    if not isinstance(kind, str):
        raise ImportFormatError(file, where, "message has no 'type'")
    timestamp = _timestamp(file, where, "timestamp", message.get("timestamp"))
    if kind not in KEPT_TYPES:
        return None

    author = message.get("author")
    if not isinstance(author, dict):
        raise ImportFormatError(file, where, "message has no 'author' object")
    author_id = _string(file, f"{where}, author.id", author.get("id"))
    display = author.get("nickname") or author.get("name")
    if not isinstance(display, str):
        raise ImportFormatError(file, where, "author has no name")
    content = message.get("content", "")
    if not isinstance(content, str):
        raise ImportFormatError(file, where, "'content' must be a string")

    placeholders = _placeholders(file, where, message)
    text = "\n".join(part for part in (content.strip(), *placeholders) if part)
    if not text:
        return None

    meta: dict[str, str] = {}
    if message.get("timestampEdited"):
        edited = _timestamp(file, where, "timestampEdited", message["timestampEdited"])
        meta["edited"] = edited.isoformat()
    if message.get("isPinned") is True:
        meta["pinned"] = "true"
    is_bot = author.get("isBot") is True
    if is_bot:
        meta["bot"] = "true"
    if placeholders:
        meta["media"] = ", ".join(
            label
            for label in ("attachment", "embed", "sticker")
            if any(p.startswith(f"[{label}") for p in placeholders)
        )

    reply_to = None
    reference = message.get("reference")
    if (
        kind == "Reply"
        and isinstance(reference, dict)
        and isinstance(reference.get("messageId"), str)
    ):
        reply_to = reference["messageId"]
    return MemoryDraft(
        text=text,
        kind=Kind.CHAT,
        source_id=message_id,
        author=display,
        author_id=f"discord:{author_id}",
        timestamp=timestamp,
        thread=key,
        reply_to=reply_to,
        # A bot's words are never the owner's, even if the owner runs the bot.
        is_owner=False if is_bot else None,
        meta=meta,
    )


def _items(file: Path, where: str, message: dict[str, Any], field: str) -> list[dict[str, Any]]:
    value = message.get(field, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ImportFormatError(file, where, f"'{field}' must be a list of objects")
    return value


def _placeholders(file: Path, where: str, message: dict[str, Any]) -> list[str]:
    """Attachments, embeds and stickers as short bracketed text."""
    placeholders = []
    for attachment in _items(file, where, message, "attachments"):
        name = attachment.get("fileName")
        placeholders.append(f"[attachment: {name}]" if name else "[attachment]")
    for embed in _items(file, where, message, "embeds"):
        label = embed.get("title") or embed.get("url")
        placeholders.append(f"[embed: {label}]" if label else "[embed]")
    for sticker in _items(file, where, message, "stickers"):
        name = sticker.get("name")
        placeholders.append(f"[sticker: {name}]" if name else "[sticker]")
    return placeholders
