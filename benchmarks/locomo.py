"""LoCoMo conversations as the exports a real user would import.

LoCoMo (snap-research, CC BY-NC 4.0) is used for evaluation only and never copied into the
project: the benchmarks read it from a path given on the command line. Each conversation becomes
a Telegram Desktop single-chat export, so it enters memory through the normal importer and store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Turns in a session carry no times of their own; space them like a real chat.
TURN_GAP = timedelta(seconds=40)


@dataclass(frozen=True)
class Question:
    text: str
    category: int
    evidence: list[str]  # Telegram message ids of the turns that answer it


@dataclass(frozen=True)
class Conversation:
    sample_id: str
    owner: str
    other: str
    export: dict[str, Any]
    questions: list[Question]
    turns: list[str]


def load(path: Path) -> list[Conversation]:
    """Every conversation of a LoCoMo JSON file, as a Telegram export plus its questions."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [_conversation(item) for item in data]


def _session_start(text: str) -> datetime:
    return datetime.strptime(text, "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def _conversation(item: dict[str, Any]) -> Conversation:
    conv = item["conversation"]
    owner, other = conv["speaker_a"], conv["speaker_b"]
    user_ids = {owner: "user1000001", other: "user1000002"}
    messages: list[dict[str, Any]] = []
    message_id: dict[str, str] = {}
    turns: list[str] = []
    n = 1
    while f"session_{n}" in conv:
        start = _session_start(conv[f"session_{n}_date_time"])
        for i, turn in enumerate(conv[f"session_{n}"]):
            when = start + i * TURN_GAP
            mid = len(messages) + 1
            message: dict[str, Any] = {
                "id": mid,
                "type": "message",
                "date": when.strftime("%Y-%m-%dT%H:%M:%S"),
                "date_unixtime": str(int(when.timestamp())),
                "from": turn["speaker"],
                "from_id": user_ids[turn["speaker"]],
                "text": turn["text"],
                "text_entities": [{"type": "plain", "text": turn["text"]}],
            }
            if turn.get("img_url"):
                # The export carries the photo, not a description of it (LoCoMo's BLIP captions
                # are not something a user's export would have).
                message["photo"] = "photos/photo.jpg"
            messages.append(message)
            message_id[turn["dia_id"]] = str(mid)
            turns.append(turn["text"])
        n += 1
    questions = [
        Question(
            text=q["question"],
            category=int(q["category"]),
            evidence=[message_id[e] for e in q.get("evidence", []) if e in message_id],
        )
        for q in item["qa"]
    ]
    export = {
        "name": other,
        "type": "personal_chat",
        "id": 900000 + len(item["sample_id"]),
        "messages": messages,
    }
    return Conversation(item["sample_id"], owner, other, export, questions, turns)


def write_export(conversation: Conversation, folder: Path) -> Path:
    """Write the conversation as `folder/result.json`, as Telegram Desktop would."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "result.json"
    path.write_text(json.dumps(conversation.export, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
