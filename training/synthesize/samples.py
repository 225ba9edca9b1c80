"""Training data: what synthesis produces and the trainers consume.

A `Sample` is one task request with the reply the twin should give; it becomes chat messages
through `twin.tasks.render_messages`, the same function serving uses, so a model is trained on
exactly the prompts it will see. A `PreferencePair` is a request with a better and a worse reply
for DPO. A `Dataset` holds both with its held-out test split and the report of what the filters
removed; it round-trips through JSONL so a pipeline stage can be resumed from disk.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from lm.base import ChatMessage
from twin.privacy import AudienceKind
from twin.tasks import ContextMemory, PromptBudget, TaskKind, TaskRequest, render_messages


class Split(StrEnum):
    TRAIN = "train"
    TEST = "test"


@dataclass(frozen=True)
class Sample:
    """A request and the reply the twin should give to it."""

    id: str
    request: TaskRequest
    reply: str
    # Memories the reply rests on, and the strings a correct reply must contain.
    support: tuple[str, ...] = ()
    key_facts: tuple[str, ...] = ()
    split: Split = Split.TRAIN
    origin: str = "offline"
    template: str = ""

    @property
    def kind(self) -> TaskKind:
        return self.request.kind

    def messages(self, budget: PromptBudget) -> list[ChatMessage]:
        """The full conversation: the rendered prompt, then the reply as the assistant turn."""
        return [*render_messages(self.request, budget), ChatMessage("assistant", self.reply)]


class PairReason(StrEnum):
    """Why a pair's rejected reply is worse (see `training.synthesize.preferences`)."""

    PERTURBED = "perturbed"
    UNSUPPORTED = "unsupported"
    WRONG_VOICE = "wrong voice"
    OVERSHARE = "overshare"
    WRONG_VERDICT = "wrong verdict"


@dataclass(frozen=True)
class PreferencePair:
    """For DPO: the same request with a reply to prefer and one to avoid. Pairs made from
    held-out samples are held out: they measure what DPO learned."""

    id: str
    request: TaskRequest
    chosen: str
    rejected: str
    reason: PairReason
    split: Split = Split.TRAIN


@dataclass
class Dataset:
    """Everything one training run learns from, for one audience's model."""

    samples: list[Sample] = field(default_factory=list)
    pairs: list[PreferencePair] = field(default_factory=list)
    # filter name → how many samples it removed
    removed: dict[str, int] = field(default_factory=dict)

    def split(self, which: Split) -> list[Sample]:
        return [s for s in self.samples if s.split == which]

    def counts(self) -> dict[str, int]:
        """Sample counts per split and task, and the number of preference pairs."""
        out: dict[str, int] = {"pairs": len(self.pairs)}
        for sample in self.samples:
            key = f"{sample.split}:{sample.kind}"
            out[key] = out.get(key, 0) + 1
        return out

    def content_hash(self) -> str:
        """A hash of what the model will learn from (training samples and pairs)."""
        digest = hashlib.sha256()
        for sample in self.split(Split.TRAIN):
            digest.update(json.dumps(_sample_json(sample), sort_keys=True).encode())
        for pair in (p for p in self.pairs if p.split == Split.TRAIN):
            digest.update(json.dumps(_pair_json(pair), sort_keys=True).encode())
        return digest.hexdigest()[:16]

    def save(self, folder: Path) -> None:
        """Write samples.jsonl, pairs.jsonl and report.json into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        _write_lines(folder / "samples.jsonl", [_sample_json(s) for s in self.samples])
        _write_lines(folder / "pairs.jsonl", [_pair_json(p) for p in self.pairs])
        (folder / "report.json").write_text(json.dumps({"removed": self.removed}, indent=2))

    @classmethod
    def load(cls, folder: Path) -> Dataset:
        samples = [_sample_from(d) for d in _read_lines(folder / "samples.jsonl")]
        pairs = [_pair_from(d) for d in _read_lines(folder / "pairs.jsonl")]
        report = json.loads((folder / "report.json").read_text())
        return cls(samples=samples, pairs=pairs, removed=report.get("removed", {}))


def request_json(request: TaskRequest) -> dict[str, Any]:
    data = asdict(request)
    data["history"] = [{"role": m.role, "content": m.content} for m in request.history]
    return data


def request_from(data: dict[str, Any]) -> TaskRequest:
    return TaskRequest(
        kind=TaskKind(data["kind"]),
        owner=data["owner"],
        audience=AudienceKind(data["audience"]),
        text=data["text"],
        asker=data.get("asker"),
        target=data.get("target"),
        reply=data.get("reply"),
        context=tuple(ContextMemory(**c) for c in data.get("context", ())),
        bio=data.get("bio", ""),
        history=tuple(ChatMessage(m["role"], m["content"]) for m in data.get("history", ())),
    )


def _sample_json(sample: Sample) -> dict[str, Any]:
    return {
        "id": sample.id,
        "request": request_json(sample.request),
        "reply": sample.reply,
        "support": list(sample.support),
        "key_facts": list(sample.key_facts),
        "split": str(sample.split),
        "origin": sample.origin,
        "template": sample.template,
    }


def _sample_from(data: dict[str, Any]) -> Sample:
    return Sample(
        id=data["id"],
        request=request_from(data["request"]),
        reply=data["reply"],
        support=tuple(data.get("support", ())),
        key_facts=tuple(data.get("key_facts", ())),
        split=Split(data.get("split", "train")),
        origin=data.get("origin", "offline"),
        template=data.get("template", ""),
    )


def _pair_json(pair: PreferencePair) -> dict[str, Any]:
    return {
        "id": pair.id,
        "request": request_json(pair.request),
        "chosen": pair.chosen,
        "rejected": pair.rejected,
        "reason": str(pair.reason),
        "split": str(pair.split),
    }


def _pair_from(data: dict[str, Any]) -> PreferencePair:
    return PreferencePair(
        id=data["id"],
        request=request_from(data["request"]),
        chosen=data["chosen"],
        rejected=data["rejected"],
        reason=PairReason(data["reason"]),
        split=Split(data.get("split", "train")),
    )


def _write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
