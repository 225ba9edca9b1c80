"""Context enhance and context critic samples, for the owner's model.

Both start from a request the owner might send an outside agent, by area of life (food, travel,
fitness…), and the owner's own sentences about that area:

- **enhance**: the request (naming a person or place from memory where it has a slot) is run
  through serving's retrieval, and the owner's sentences in what comes back that fit the request
  (its area's words, the person or place it names) are added to it and listed. The added
  context is what the prompt shows, so the same request always gets the same enrichment;
- **critic**: an agent's reply that states one or two of those facts, each either as memory has
  it or with its key value swapped for another of the same kind (another date, another place)
  taken from a different memory. The verdict follows from how many are wrong; the feedback
  names what to change; "Checked against" lists the memory sentences.

Serving runs both tasks for the owner only, so a third party's dataset gets neither.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

from memory.models import Memory
from training.synthesize.assemble import ServingSearch
from training.synthesize.drafts import Draft
from training.synthesize.material import Material
from training.synthesize.passages import (
    ISO_DATE,
    Passage,
    Span,
    SpanKind,
    find_spans,
    normalise,
    strip_symbols,
)
from training.synthesize.samples import Split
from training.synthesize.templates import AREAS, CRITIC_REPLY, Area, Template
from training.synthesize.voice import lower_first, to_second_person
from twin.privacy import AudienceKind
from twin.tasks import TaskKind, Verdict, excerpt

FACT_CHARS = 110
MAX_ADDED = 3
MAX_PLACES = 12
# How many of an area's best-matching sentences a sample picks its facts from.
AREA_POOL = 40
_WORD = re.compile(r"[\w'’]+")
_ADDRESSED = re.compile(r"\b(?:you|your|yours|you['’](?:re|ve|ll|d))\b", re.I)
_TRAVEL_PLACE = re.compile(r"\b(?:to|from|in) ([A-Z][\w-]+(?: [A-Z][\w-]+)?)\b(?!['’])")
_SWAPPABLE = frozenset(
    (
        SpanKind.DATE,
        SpanKind.WEEKDAY,
        SpanKind.TIME,
        SpanKind.QUANTITY,
        SpanKind.DURATION,
        SpanKind.PLACE,
    )
)


@dataclass(frozen=True)
class _Request:
    template: Template
    split: Split
    text: str
    slot: str


@dataclass(frozen=True)
class _Claim:
    passage: Passage
    fact: str
    span: Span


class RequestSynthesizer:
    """Enhance and critic drafts from the owner's sentences, by area of life."""

    def __init__(
        self,
        material: Material,
        rng: random.Random,
        test_share: float = 0.12,
        shown_chars: int = 200,
    ) -> None:
        self.m = material
        self.voice = material.voice
        self.shown_chars = shown_chars
        self.rng = rng
        self.test_share = test_share
        self._pools = {area.name: self._pool(area) for area in AREAS}
        self._values = self._values_by_kind()
        self._slots = {"person": self._people(), "place": self._places()}

    def enhance(self, search: ServingSearch, per_request: int = 6) -> list[Draft]:
        """Requests rewritten with the context retrieval finds for them."""
        if self.m.audience.kind != AudienceKind.OWNER:
            return []
        requests = [(area, r) for area in AREAS for r in self._requests(area, per_request)]
        search.prime(r.text for _, r in requests)
        drafts = []
        for area, request in requests:
            draft = self._enhanced(area, request, search.memories(request.text))
            if draft is not None:
                drafts.append(draft)
        return drafts

    def critic(self, per_request: int = 6) -> list[Draft]:
        """Another agent's replies, judged against memory."""
        if self.m.audience.kind != AudienceKind.OWNER:
            return []
        drafts = []
        for area in AREAS:
            claims = [c for p in self._pools[area.name] for c in self._claims(p)]
            if len(claims) < 2:
                continue
            for request in self._requests(area, per_request):
                draft = self._critique(area, request, claims)
                if draft is not None:
                    drafts.append(draft)
        return drafts

    # -- enhance -------------------------------------------------------------------------------

    def _enhanced(self, area: Area, request: _Request, found: list[Memory]) -> Draft | None:
        chosen = self._context_facts(area, request, found)
        if not chosen:
            return None
        facts = tuple(_fact_text(p.text) for p in chosen)
        about = " ".join(f if f.endswith((".", "!", "?")) else f + "." for f in facts)
        steps = (
            f"The request is about {area.name}.",
            *(
                f"{self._source(p)} says {self._told(_opening(f))}"
                for p, f in zip(chosen[:2], facts[:2], strict=True)
            ),
            "Add what the agent needs to know.",
        )
        return Draft(
            kind=TaskKind.CONTEXT_ENHANCE,
            text=request.text,
            answer=f"{request.text} About me: {about}",
            support=tuple(dict.fromkeys(p.memory.id for p in chosen)),
            key_facts=facts,
            steps=steps,
            template=request.template.id,
            split=request.split,
            target=self.rng.choice(area.targets),
            listed=facts,
            fact=f"enhance:{request.text}",
        )

    def _context_facts(self, area: Area, request: _Request, found: list[Memory]) -> list[Passage]:
        """The owner's sentences in `found` that fit the request: its area's words and the
        person or place it names, best first (context order breaks ties)."""
        by_memory = {m.id: i for i, m in enumerate(found)}
        scored = []
        for passage in self.m.passages:
            rank = by_memory.get(passage.memory.id)
            if rank is None or not _usable_fact(passage) or not self._shown(passage, request.text):
                continue
            words = {w.casefold() for w in _WORD.findall(passage.text)}
            slot = request.slot
            score = len(words & area.keywords) + (2 if slot and slot in passage.text else 0)
            if score:
                scored.append((-score, rank, passage.text, passage))
        scored.sort(key=lambda item: item[:3])
        chosen: list[Passage] = []
        for *_, passage in scored:
            if len(chosen) < MAX_ADDED and passage.text not in {p.text for p in chosen}:
                chosen.append(passage)
        return chosen

    # -- critic --------------------------------------------------------------------------------

    def _critique(self, area: Area, request: _Request, claims: list[_Claim]) -> Draft | None:
        count = self.rng.choice((1, 2))
        chosen = self.rng.sample(claims, count)
        if count == 2 and chosen[0].passage.memory.id == chosen[1].passage.memory.id:
            chosen = chosen[:1]
        wrong_count = self.rng.randint(0, len(chosen))
        stated, feedback, steps = [], [], []
        for i, claim in enumerate(chosen):
            right = claim.span.text
            wrong = self._other_value(claim.span) if i < wrong_count else None
            if i < wrong_count and wrong is None:
                return None
            value = wrong or right
            sentence = claim.fact.replace(right, value, 1)
            stated.append(_as_statement(to_second_person(sentence)))
            source = self.voice.source(claim.passage.memory)
            if wrong:
                feedback.append(f"Change this: it says {wrong}, but your memory says {right}.")
                steps.append(f"The reply says {wrong}, but {source} says {right}.")
            else:
                feedback.append(f"{right[0].upper()}{right[1:]} is right.")
                steps.append(f"The reply says {right}, as {source} does.")
        verdict = (
            Verdict.FITS
            if wrong_count == 0
            else Verdict.DOES_NOT_FIT
            if wrong_count == len(chosen)
            else Verdict.PARTLY
        )
        opening = {
            Verdict.FITS: "This fits your situation.",
            Verdict.PARTLY: "Partly right, but one detail is wrong.",
            Verdict.DOES_NOT_FIT: "This does not fit you.",
        }[verdict]
        reply_template = self.rng.choice(CRITIC_REPLY.of(request.split))
        reply = reply_template.text.format(claims=" ".join(stated))
        checked = tuple(c.fact for c in chosen)
        return Draft(
            kind=TaskKind.CONTEXT_CRITIC,
            text=request.text,
            answer=" ".join([opening, *feedback]),
            support=tuple(dict.fromkeys(c.passage.memory.id for c in chosen)),
            key_facts=tuple(c.span.text for c in chosen),
            steps=(*steps, _CONCLUSION[verdict]),
            template=f"{request.template.id}+{reply_template.id}",
            split=request.split,
            reply=reply,
            verdict=verdict,
            listed=checked,
            query=f"{request.text}\n{reply}",
            fact=f"critic:{area.name}:" + ",".join(c.passage.memory.id for c in chosen),
        )

    def _source(self, passage: Passage) -> str:
        source = self.voice.source(passage.memory)
        return source[:1].upper() + source[1:]

    def _told(self, owner_words: str) -> str:
        """The owner's words as a step retells them to the owner: "you climb at…"."""
        names = self.m.lexicon.proper | self.m.lexicon.people
        return lower_first(self.voice.say(owner_words, named=True), names)

    def _shown(self, passage: Passage, focus: str) -> bool:
        """Whether the prompt shows `passage`: a context line shows only the part of a long
        memory that best matches the request (`twin.tasks.excerpt`)."""
        shown = excerpt(passage.memory.text, focus, self.shown_chars)
        return normalise(_fact_text(passage.text)) in normalise(shown)

    def _claims(self, passage: Passage) -> Iterator[_Claim]:
        fact = _fact_text(passage.text)
        for span in find_spans(fact, self.m.lexicon):
            if span.kind in _SWAPPABLE and to_second_person(span.text) == span.text:
                yield _Claim(passage, fact, span)
                return

    def _other_value(self, span: Span) -> str | None:
        """A value of the same kind as `span` from another memory, different from it."""
        own = normalise(span.text)
        options = [v for v in self._values.get(span.kind, []) if normalise(v) != own]
        return self.rng.choice(options) if options else None

    # -- shared --------------------------------------------------------------------------------

    def _requests(self, area: Area, per_request: int) -> list[_Request]:
        """The area's requests: each training phrasing with up to `per_request` people or
        places filled in, and the test phrasings with fewer."""
        out = []
        for split in (Split.TRAIN, Split.TEST):
            count = per_request if split == Split.TRAIN else max(1, per_request // 3)
            for template in area.requests.of(split):
                slot = next((n for n in self._slots if "{" + n + "}" in template.text), None)
                if slot is None:
                    out.append(_Request(template, split, template.text, ""))
                    continue
                values = self._slots[slot]
                for value in self.rng.sample(values, min(count, len(values))):
                    out.append(
                        _Request(template, split, template.text.format(**{slot: value}), value)
                    )
        return out

    def _people(self) -> list[str]:
        return sorted(self.m.lexicon.people)

    def _places(self) -> list[str]:
        """The places the owner goes to, is in or comes from most (twice at least)."""
        counts: dict[str, int] = {}
        for passage in self.m.passages:
            if not passage.by_owner:
                continue
            for match in _TRAVEL_PLACE.finditer(passage.text):
                place = match.group(1)
                if place.split()[0] in self.m.lexicon.proper - self.m.lexicon.people:
                    counts[place] = counts.get(place, 0) + 1
        ranked = sorted((p for p in counts if counts[p] > 1), key=lambda p: (-counts[p], p))
        return ranked[:MAX_PLACES]

    def _pool(self, area: Area) -> list[Passage]:
        """The owner's sentences about `area`, best matches first."""
        scored = []
        for passage in self.m.passages:
            if not _usable_fact(passage):
                continue
            text = passage.text
            words = {w.casefold() for w in _WORD.findall(text)}
            hits = len(words & area.keywords)
            if hits:
                scored.append((-hits, passage.memory.id, text, passage))
        scored.sort(key=lambda item: item[:3])
        return [item[3] for item in scored[:AREA_POOL]]

    def _values_by_kind(self) -> dict[SpanKind, list[str]]:
        """Every swappable value in what the audience may see, by kind (sorted, unique; no
        machine dates: a reply states the dates it checks as people write them)."""
        values: dict[SpanKind, set[str]] = {}
        for passage in self.m.passages:
            for span in find_spans(passage.text, self.m.lexicon):
                if span.kind in _SWAPPABLE and not ISO_DATE.search(span.text):
                    values.setdefault(span.kind, set()).add(span.text)
        return {kind: sorted(found) for kind, found in values.items()}


def _usable_fact(passage: Passage) -> bool:
    """An owner's sentence, as memory writes it, that can stand as a fact about them: not a
    question, not words to someone ("thanks, both of you"), not too short or long, not a log
    line with a machine date ("2026-05-14: accepted")."""
    text = passage.text
    return (
        passage.by_owner
        and passage.verbatim
        and not text.endswith("?")
        and not _ADDRESSED.search(text)
        and 20 <= len(text) <= 200
        and not ISO_DATE.search(text)
    )


_CONCLUSION = {
    Verdict.FITS: "So it fits.",
    Verdict.PARTLY: "So it only partly fits.",
    Verdict.DOES_NOT_FIT: "So it does not fit.",
}


def _opening(text: str, words: int = 6) -> str:
    head = text.split()[:words]
    return " ".join(head) + ("…" if len(text.split()) > words else "")


def _fact_text(text: str) -> str:
    """A sentence cut to `FACT_CHARS` at a clause boundary, without emoji."""
    text = " ".join(strip_symbols(text).split())
    if len(text) <= FACT_CHARS:
        return text.rstrip(" ,;")
    cut = max(text.rfind(sep, 0, FACT_CHARS) for sep in (", ", "; ", ". "))
    return text[: cut if cut > 20 else FACT_CHARS].rstrip(" ,;")


def _as_statement(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
