"""What a synthesizer proposes, before retrieval context and the reply format are added.

Both synthesizers (offline and LLM) produce `Draft`s; `training.synthesize.assemble` turns every
draft into a `Sample` the same way, so the two feed the same filters with the same prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

from lm.base import ChatMessage
from training.synthesize.samples import Split
from twin.tasks import TaskKind, Verdict


@dataclass(frozen=True)
class Draft:
    """A request and the answer the twin should give, with what the answer rests on.

    `answer` is the visible answer in the audience's voice, without reasoning; `steps` are the
    reasoning steps a CoT strategy may show. `listed` is the "Context added" list of an enhance
    sample or the "Checked against" list of a critic sample. `query` is what retrieval searches
    for when it is not the request text (a critic sample searches request and reply together,
    as serving does).
    """

    kind: TaskKind
    text: str
    answer: str
    support: tuple[str, ...] = ()
    key_facts: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    template: str = ""
    split: Split = Split.TRAIN
    origin: str = "offline"
    asker: str | None = None
    target: str | None = None
    reply: str | None = None
    verdict: Verdict | None = None
    listed: tuple[str, ...] = ()
    history: tuple[ChatMessage, ...] = ()
    query: str | None = None
    # the group of drafts about the same fact; a held-out question's group is its fact
    fact: str = ""
