"""The offline synthesizer: memory QA, identity and declines from L0 and L1, with no LLM.

Questions come from four places:

- a passage's answer spans: the clause around a date, time, place, person or quantity becomes a
  wh-question ("Signed up on 20 November 2025 in a moment of weakness" → "When did I sign up in
  a moment of weakness?"), the passage itself the answer;
- "Label: value" items of notes ("Favourite toy: the squeaky crab"), asked by their label;
- topics: a name in a passage with its most distinctive word ("What happened with Biscuit and
  the stitches?"), and what other people wrote to the owner ("What did Tomás say about…");
- L1 facts, by attribute, in several phrasings.

Answers are the memory's own words in the audience's voice, with the key fact verbatim and the
memory's date when the question is about time. A share of the facts also gets a question in a
test phrasing: that is the held-out split.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

from memory.models import Kind
from training.synthesize.drafts import Draft
from training.synthesize.extract import (
    MONTH_NAMES,
    Passage,
    Span,
    SpanKind,
    find_spans,
    italic_phrases,
    strip_symbols,
)
from training.synthesize.grammar import RELATIVE_TIME, Clause, analyse, base_form
from training.synthesize.material import Fact, Material
from training.synthesize.samples import Split
from training.synthesize.templates import (
    FACTS,
    HOW_MANY_SUBJECT,
    HOW_MUCH,
    IDENTITY_OTHER,
    IDENTITY_OWNER,
    LABEL,
    LABEL_DATE,
    LABEL_NAME,
    OTHER_FACT,
    PRIVATE,
    RELATION_FACT,
    SAID,
    TIME,
    TOPIC,
    WEEKDAY,
    WHEN,
    WHERE,
    WHO_OBJECT,
    WHO_SUBJECT,
    Phrasings,
    Template,
)
from training.synthesize.voice import asked_by, in_voice
from twin.privacy import AudienceKind
from twin.service import WITHHELD
from twin.tasks import TaskKind

# A reply quotes at most this much of a memory: enough for the fact, short enough to learn.
ANSWER_CHARS = 180
MAX_QUESTION_WORDS = 18
DECLINE_FACT = "decline:"
MAX_SPANS_PER_PASSAGE = 3
TOPIC_BESIDES = 0.3
_PREPOSITION = re.compile(
    r"\b(on|in|at|since|by|from|until|till|for|every|to|with|around|near|across|of|between"
    r"|about|after|before|during|under|over|into|through)\s+(?:the\s+)?$",
    re.IGNORECASE,
)
# Clause boundaries: punctuation (not the colon of 19:30 or the comma of 18,000), dashes, and
# "and"/"but"/"so" before a new subject.
_CLAUSE_BREAK = re.compile(
    r"\s*(?:[;(){}\[\]]|(?<!\d)[:,]|[:,](?!\d)|\s[–—-]\s)\s*"
    r"|\s(?:and|but|so)\s(?=(?:I|I'm|I've|I'll|we|we're|he|she|it|it's|they|there)\b)"
)
_PAST_FRAME = re.compile(r"\bwas it that\b|\bwhat was the date\b", re.I)
_LEADING_LINK = re.compile(r"^(?:and|but|so|or|then|which|because|while|when)\s+", re.I)
_TIME_UNITS = frozenset(["minutes", "min", "hours", "days", "weeks", "months", "years"])
_DISTANCE_UNITS = frozenset(["km", "m", "cm", "mm"])
_ME = re.compile(r"\b(?:me|myself)\b", re.I)
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours)\b", re.I)
_TITLE_NOISE = re.compile(r"\s*\((?:research )?notes\)|\s+notes$|^journal,\s*", re.I)


@dataclass(frozen=True)
class Phrased:
    """A question in one phrasing, with the template it came from."""

    template: Template
    text: str


class OfflineSynthesizer:
    """Drafts for one audience, from what it may see. Deterministic given `rng`'s seed."""

    def __init__(
        self,
        material: Material,
        rng: random.Random,
        *,
        test_share: float = 0.12,
        phrasings_per_fact: int = 3,
    ) -> None:
        self.m = material
        self.rng = rng
        self.test_share = test_share
        self.phrasings_per_fact = phrasings_per_fact
        self.kind = material.audience.kind
        self._askers = sorted(material.lexicon.people)

    # -- public ------------------------------------------------------------------------------

    def memory_qa(self) -> list[Draft]:
        """Questions about the owner's life from passages and L1 facts."""
        drafts: list[Draft] = []
        for passage in self.m.passages:
            drafts.extend(self._from_passage(passage))
        for fact in self.m.facts:
            drafts.extend(self._from_fact(fact))
        return drafts

    def identity(self) -> list[Draft]:
        """Identity: "who are you?", "what do you do?", answered from the facts the audience
        may see."""
        owner_asks = self.kind == AudienceKind.OWNER
        phrasings = IDENTITY_OWNER if owner_asks else IDENTITY_OTHER
        about = [
            f for f in self.m.facts if f.attribute in ("job", "employer", "studies", "identity")
        ]
        lines = [in_voice(f.first_person.rstrip(".") + ".", self.kind) for f in about[:3]]
        if owner_asks:
            answer = (
                f"I'm your AI twin, {self.m.first_name}: I answer from your notes and chats, "
                "the way you would. " + " ".join(lines)
            )
        else:
            answer = (
                f"I'm {self.m.owner}, or rather my AI twin, answering for me from what I've "
                "shared with friends. " + " ".join(lines)
            )
        support = tuple(dict.fromkeys(s for f in about[:3] for s in f.support))
        keys = tuple(f.value for f in about[:3])
        steps = ("Asked who I am.", *(f"Fact: {f.statement}." for f in about[:3]))
        drafts = []
        for split in (Split.TRAIN, Split.TEST):
            for template in phrasings.of(split):
                drafts.append(
                    Draft(
                        kind=TaskKind.IDENTITY,
                        text=template.text,
                        answer=answer.strip(),
                        support=support,
                        key_facts=keys,
                        steps=steps,
                        template=template.id,
                        split=split,
                        asker=self._asker(),
                        fact="identity",
                    )
                )
        return drafts

    def declines(self) -> list[Draft]:
        """For a third party: requests for typically private things, declined. They use no
        memory at all, so they can carry nothing private."""
        if self.kind == AudienceKind.OWNER:
            return []
        drafts = []
        for private in PRIVATE:
            steps = (f"This asks for {private.category}.", "That stays private; I don't share it.")
            for split in (Split.TRAIN, Split.TEST):
                for template in private.phrasings.of(split):
                    drafts.append(
                        Draft(
                            kind=TaskKind.MEMORY_QA,
                            text=template.text,
                            answer=WITHHELD,
                            steps=steps,
                            template=template.id,
                            split=split,
                            asker=self._asker(),
                            fact=f"{DECLINE_FACT}{private.category}",
                        )
                    )
        return drafts

    # -- passages ------------------------------------------------------------------------------

    def _from_passage(self, passage: Passage) -> Iterator[Draft]:
        if passage.text.rstrip().endswith("?") or not self._about_owner(passage):
            return
        if passage.label and passage.topic:
            yield from self._from_label(passage)
            return
        titles = italic_phrases(passage.memory.text)
        spans = find_spans(passage.text, self.m.lexicon, titles)
        asked = 0
        for span in sorted(spans, key=_span_priority):
            if asked >= MAX_SPANS_PER_PASSAGE:
                break
            drafts = list(self._from_span(passage, span))
            asked += bool(drafts)
            yield from drafts
        if not any(s.kind.temporal for s in spans):
            drafts = list(self._from_timestamp(passage))
            asked += bool(drafts)
            yield from drafts
        # a topic question where the passage gave no sharper one (and now and then besides)
        if not asked or self.rng.random() < TOPIC_BESIDES:
            yield from self._from_topic(passage, spans)

    def _about_owner(self, passage: Passage) -> bool:
        """Whether a passage tells something about the owner: their own words, or someone
        writing to them (a one-to-one chat, or a message that names or addresses them)."""
        if passage.by_owner:
            return True
        memory = passage.memory
        if memory.kind != Kind.CHAT:
            return False
        text = passage.text
        return bool(_SECOND_PERSON.search(text)) or self.m.first_name in text

    def _from_span(self, passage: Passage, span: Span) -> Iterator[Draft]:
        before = passage.text[: span.start]
        prep_match = _PREPOSITION.search(before)
        prep = prep_match.group(1).lower() if prep_match else ""
        cut = prep_match.start() if prep_match else span.start
        rest = passage.text[:cut] + " " + passage.text[span.end :]
        at_start = not passage.text[: span.start].strip(' -–*"“')
        clause_text = _clause_around(rest, cut)
        if span.kind.temporal:
            clause_text = RELATIVE_TIME.sub("", clause_text)
        clause_text = _tidy(clause_text)
        if span.kind in (SpanKind.PERSON,) and at_start:
            yield from self._who_subject(passage, span)
            return
        if span.kind in (SpanKind.QUANTITY, SpanKind.MONEY) and at_start:
            yield from self._how_many_subject(passage, span)
            return
        clause = self._clause(clause_text, passage)
        if clause is None:
            return
        family, values = self._frame(span, prep, clause)
        if family is None:
            return
        yield from self._drafts(passage, span.text, span.kind.temporal, family, values)

    def _frame(self, span: Span, prep: str, clause: Clause) -> tuple[Phrasings | None, dict]:
        values = {
            "inv": clause.inverted(),
            "decl": clause.declarative(),
            "prep": "",
            "past": clause.form in ("past", "be-past", "perfect"),
        }
        kind = span.kind
        if kind in (SpanKind.DATE, SpanKind.YEAR):
            return WHEN, values
        if kind == SpanKind.WEEKDAY:
            return WEEKDAY, values
        if kind == SpanKind.TIME:
            return TIME, values
        if kind == SpanKind.PLACE:
            values["prep"] = f" {prep}" if prep in ("to", "from") else ""
            return WHERE, values
        if kind == SpanKind.PERSON and prep in ("with", "to", "for", "from", "by"):
            values["prep"] = f" {prep}"
            return WHO_OBJECT, values
        if kind in (SpanKind.QUANTITY, SpanKind.DURATION, SpanKind.MONEY):
            measure = _measure(span)
            if measure is None:
                return None, values
            values["measure"] = measure
            return HOW_MUCH, values
        return None, values

    def _who_subject(self, passage: Passage, span: Span) -> Iterator[Draft]:
        clause = analyse(
            _tidy(_clause_around(passage.text, 0)),
            owner_speaks=False,
            names=frozenset({span.text}),
        )
        if clause is None or clause.subject != span.text:
            return
        values = {"pred": clause.predicate()}
        yield from self._drafts(passage, span.text, False, WHO_SUBJECT, values)

    def _how_many_subject(self, passage: Passage, span: Span) -> Iterator[Draft]:
        unit = span.text.split()[-1] if " " in span.text else ""
        after = _tidy(_clause_around(passage.text[span.end :], 0))
        words = after.split()
        if not unit.isalpha() or not words or base_form(words[0]) is None:
            return
        values = {"unit": unit.lower(), "pred": after}
        yield from self._drafts(passage, span.text, False, HOW_MANY_SUBJECT, values)

    def _from_timestamp(self, passage: Passage) -> Iterator[Draft]:
        """A chat message telling of something that happened: "When did…?", answered with the
        message's date."""
        memory = passage.memory
        if memory.kind != Kind.CHAT or not passage.when or len(passage.text.split()) < 4:
            return
        clause_text = _tidy(RELATIVE_TIME.sub("", _clause_around(passage.text, 0)))
        clause = self._clause(clause_text, passage)
        if clause is None or clause.form != "past":
            return
        values = {"inv": clause.inverted(), "decl": clause.declarative()}
        yield from self._drafts(passage, passage.when, True, WHEN, values, dated=True)

    def _from_label(self, passage: Passage) -> Iterator[Draft]:
        label, value = passage.label, passage.value
        if " " not in value.strip() and re.search(r"[-/]", value):
            return  # a link to another note, not a fact
        topic = _TITLE_NOISE.sub("", passage.topic).strip() or passage.topic
        label = re.sub(r"^(?:the|a|an)\s+", "", label, flags=re.I)
        label_spans = find_spans(label, self.m.lexicon)
        key = _first_clause(value)
        if not key or not label:
            return
        if label_spans and label_spans[0].kind == SpanKind.DATE:
            family, values = LABEL_DATE, {"topic": topic, "label": label}
        elif self._is_name(label):
            family, values = LABEL_NAME, {"topic": topic, "label": label}
        elif _noun_like(label):
            family, values = LABEL, {"topic": topic, "label": self._lower(label)}
        else:
            return
        answer_text = f"{label}: {value}"
        yield from self._drafts(
            passage, key, False, family, values, answer=answer_text, anchor=label
        )

    def _from_topic(self, passage: Passage, spans: list[Span]) -> Iterator[Draft]:
        names = [s for s in spans if s.kind in (SpanKind.NAME, SpanKind.PERSON, SpanKind.PLACE)]
        if not passage.by_owner:
            yield from self._from_said(passage, spans)
            return
        if names:
            entity = names[0].text
        elif passage.topic and self.rng.random() < 0.5:
            entity = _TITLE_NOISE.sub("", passage.topic).strip() or passage.topic
        else:
            return
        keyword = self.m.distinctive_word(passage.text, avoid=entity)
        if keyword is None:
            return
        key = next((s.text for s in spans if s.text != entity), keyword)
        values = {"entity": entity, "keyword": keyword}
        yield from self._drafts(passage, key, False, TOPIC, values, anchor=entity)

    def _from_said(self, passage: Passage, spans: list[Span]) -> Iterator[Draft]:
        who = (passage.memory.author or "").split()[0] if passage.memory.author else ""
        keyword = self.m.distinctive_word(passage.text)
        if not who or keyword is None or len(passage.text.split()) < 6:
            return
        key = spans[0].text if spans else keyword
        values = {"who": who, "keyword": keyword}
        yield from self._drafts(passage, key, False, SAID, values, anchor=keyword)

    def _is_name(self, phrase: str) -> bool:
        words = phrase.split()
        known = self.m.lexicon.proper | self.m.lexicon.people
        return words[0] in known or (len(words) > 1 and all(w[:1].isupper() for w in words))

    def _lower(self, phrase: str) -> str:
        """`phrase` in lower case, except the names in it."""
        known = self.m.lexicon.proper | self.m.lexicon.people
        return " ".join(w if w in known else w.lower() for w in phrase.split())

    # -- facts ---------------------------------------------------------------------------------

    def _from_fact(self, fact: Fact) -> Iterator[Draft]:
        attribute = fact.attribute
        if attribute.startswith("relation:"):
            family, values = RELATION_FACT, {"relation": attribute.split(":", 1)[1]}
        elif attribute in FACTS:
            family, values = FACTS[attribute], {}
        else:
            family, values = OTHER_FACT, {"attribute": attribute.replace("_", " ")}
        answer = in_voice(_sentence(fact.first_person), self.kind)
        if fact.value not in answer:
            return
        steps = (f"Fact from memory: {fact.statement}.", f"So: {fact.value}.")
        for split, phrased in self._phrasings(family, values):
            yield Draft(
                kind=TaskKind.MEMORY_QA,
                text=phrased.text,
                answer=answer,
                support=fact.support,
                key_facts=(fact.value,),
                steps=steps,
                template=phrased.template.id,
                split=split,
                asker=self._asker(),
                fact=f"fact:{attribute}:{fact.value}",
            )

    # -- shared --------------------------------------------------------------------------------

    def _clause(self, text: str, passage: Passage) -> Clause | None:
        names = self.m.lexicon.proper | self.m.lexicon.people
        # a note about someone else ("Biscuit": "Came with me to Lisbon") leaves out *their*
        # name, not the owner's
        about_other = bool(passage.topic) and passage.topic.split()[0] in names
        owner_speaks = passage.by_owner and not about_other and not _ME.search(text)
        clause = analyse(text, owner_speaks=owner_speaks, names=names)
        if clause is None:
            return None
        if not passage.by_owner and clause.subject in ("I", "we"):
            return None  # someone else's "I" is not the owner
        if len(clause.rest.split()) > 12 or _SECOND_PERSON.search(clause.declarative()):
            return None
        return clause

    def _drafts(
        self,
        passage: Passage,
        key: str,
        temporal: bool,
        family: Phrasings,
        values: dict,
        *,
        answer: str | None = None,
        anchor: str | None = None,
        dated: bool = False,
    ) -> Iterator[Draft]:
        """One fact's drafts: its training phrasings, and a test phrasing for some facts."""
        reply = self._answer(passage, answer or passage.text, key, temporal, dated)
        if reply is None:
            return
        memory = passage.memory
        who = memory.author or "note"
        place = f"Memory {passage.when} ({who})" if passage.when else f"A memory ({who})"
        mention = anchor or _gist(values)
        steps = [f"{place} mentions {mention}.", f"It says: {key}."]
        if temporal and passage.when:
            steps.append(f"So: {_month_year(passage.when) if dated else key}.")
        fact = f"{memory.id}:{key}"
        for split, phrased in self._phrasings(family, values, past=values.get("past", True)):
            yield Draft(
                kind=TaskKind.MEMORY_QA,
                text=phrased.text,
                answer=reply,
                support=(memory.id,),
                key_facts=(key,),
                steps=tuple(steps),
                template=phrased.template.id,
                split=split,
                asker=self._asker(),
                fact=fact,
            )

    def _phrasings(
        self, family: Phrasings, values: dict, *, past: bool = True
    ) -> Iterator[tuple[Split, Phrased]]:
        """Training phrasings (up to `phrasings_per_fact`), and for a `test_share` of facts a
        test phrasing too, each as the audience asks it. A clause in the present leaves out
        the phrasings in the past ("When was it that…")."""
        train = tuple(t for t in family.train if past or not _PAST_FRAME.search(t.text))
        chosen = self.rng.sample(train, min(self.phrasings_per_fact, len(train)))
        picks = [(Split.TRAIN, t) for t in chosen]
        if family.test and self.rng.random() < self.test_share:
            picks.append((Split.TEST, self.rng.choice(family.test)))
        for split, template in picks:
            text = _question(template.text, values)
            if text is None:
                continue
            yield split, Phrased(template, asked_by(text, self.kind))

    def _answer(
        self, passage: Passage, text: str, key: str, temporal: bool, dated: bool
    ) -> str | None:
        """The reply: the memory's words (cut around the key fact) in the audience's voice,
        dated when the question is about time, or quoted when someone else wrote them."""
        text = _concise(strip_symbols(text).strip(), key)
        if text is None:
            return None
        if passage.by_owner:
            if passage.memory.kind != Kind.CHAT or passage.label:
                text = _with_subject(text)
            body = in_voice(text, self.kind)
        else:
            who = (passage.memory.author or "Someone").split()[0]
            body = f'{who} wrote on {passage.when}: "{text}"'
        if key not in body:
            return None
        if dated:
            return f"On {passage.when}: {body}"
        if temporal and passage.when and not re.search(r"\b(?:19|20)\d{2}\b", key):
            return f"{body} (noted {passage.when})"
        return body

    def _asker(self) -> str | None:
        """Who asks: the owner is never named; a friend is sometimes one of the people in
        memory, sometimes unnamed (as over MCP)."""
        if self.kind == AudienceKind.OWNER or not self._askers or self.rng.random() < 0.5:
            return None
        return self.rng.choice(self._askers)


# -- text helpers ------------------------------------------------------------------------------


def _span_priority(span: Span) -> int:
    order = (
        SpanKind.DATE,
        SpanKind.PLACE,
        SpanKind.PERSON,
        SpanKind.QUANTITY,
        SpanKind.WEEKDAY,
        SpanKind.TIME,
        SpanKind.YEAR,
        SpanKind.DURATION,
        SpanKind.MONEY,
    )
    return order.index(span.kind) if span.kind in order else len(order)


def _clause_around(text: str, position: int) -> str:
    """The clause of `text` that holds `position` (clauses split at commas, colons, brackets
    and dashes), without a leading "and", "but"…; with the clause before when it is short."""
    parts: list[tuple[int, int]] = []
    start = 0
    for match in _CLAUSE_BREAK.finditer(text):
        parts.append((start, match.start()))
        start = match.end()
    parts.append((start, len(text)))
    for i, (a, b) in enumerate(parts):
        if a <= position <= b + 1:
            chosen = text[a:b]
            if len(chosen.split()) < 3 and i > 0:
                chosen = text[parts[i - 1][0] : b]
            return _LEADING_LINK.sub("", chosen.strip())
    return text.strip()


def _tidy(text: str) -> str:
    text = strip_symbols(text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return text.strip(" ,.;:!-–")


def _measure(span: Span) -> str | None:
    words = span.text.split()
    unit = words[-1].lower() if len(words) > 1 else re.sub(r"^[\d.,:]+", "", span.text).lower()
    if span.kind == SpanKind.MONEY:
        return "much"
    if span.kind == SpanKind.DURATION or unit in _TIME_UNITS:
        return "long"
    if unit in _DISTANCE_UNITS:
        return f"many {unit}"
    if unit.isalpha() and len(unit) > 2:
        return f"many {unit}"
    return None


def _question(template: str, values: dict) -> str | None:
    try:
        text = template.format(**values)
    except KeyError:
        return None
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([?.!,])", r"\1", text)
    if len(text.split()) > MAX_QUESTION_WORDS:
        return None
    return text[0].upper() + text[1:]


def _concise(text: str, key: str) -> str | None:
    """`text` cut to about `ANSWER_CHARS` around `key`, at clause boundaries (or, in one long
    clause, to the words around it); None when the key is not in it."""
    text = " ".join(text.split())
    at = text.find(key)
    if at < 0:
        return None
    if len(text) <= ANSWER_CHARS:
        return text
    cuts = [0, *(m.end() for m in re.finditer(r"[,;.!?]\s", text)), len(text)]
    start = max(c for c in cuts if c <= at)
    end = min(c for c in cuts if c >= at + len(key))
    window = text[start:end].strip(" ,;")
    if len(window) <= ANSWER_CHARS:
        return window
    before = text[start:at].split()[-8:]
    after = text[at + len(key) : end].split()[:8]
    return " ".join([*before, key, *after]).strip(" ,;")


def _with_subject(text: str) -> str:
    """A note's "Signed up on…" with the owner put back in: "I signed up on…"."""
    first, _, rest = text.partition(" ")
    if first[:1].isupper() and base_form(first) is not None and rest:
        return f"I {first.lower()} {rest}"
    return text


def _first_clause(value: str) -> str:
    clause = re.split(r"[,;.(]|\s[–—-]\s", value, maxsplit=1)[0].strip()
    return clause if 0 < len(clause) <= 60 else ""


def _noun_like(label: str) -> bool:
    words = label.split()
    first = words[0].lower()
    return (
        len(words) <= 4
        and first not in {"can't", "don't", "is", "was", "if", "when", "see", "give", "tell"}
        and base_form(first) is None
        and label[:1].isalpha()
    )


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _gist(values: dict) -> str:
    for key in ("decl", "pred", "entity", "label", "keyword", "topic"):
        if values.get(key):
            return str(values[key])
    return "this"


def _month_year(iso: str) -> str:
    year, month, _ = iso.split("-")
    return f"{MONTH_NAMES[int(month) - 1]} {year}"
