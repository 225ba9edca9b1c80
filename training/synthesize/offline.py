"""The offline synthesizer: memory QA, identity and declines from L0 and L1, with no LLM.

Questions come from four places:

- a passage's answer spans: the clause around a date, time, place, person or quantity becomes a
  wh-question ("Signed up on 20 November 2025 in a moment of weakness" → "When did I sign up in
  a moment of weakness?");
- the headings of notes ("Favourite toy: the squeaky crab"), asked the way people refer to
  their notes ("What did I note down for the favourite toy in my Biscuit notes?");
- topics: a name in a passage, or the note's title, with a thing the passage is about ("What
  happened with Biscuit and the stitches?"), and what other people wrote to the owner ("What did
  Tomás say about the campus board?");
- L1 facts, by attribute, in several phrasings.

A question is asked only when it reads as one: a thing asked about is a noun phrase of the
memory, a clause keeps one subject and verb, a heading names something. Third parties ask about
the owner as "you", by name, or with the owner's pronouns (`voice.Voice.ask`).

Replies are short: the memory's words around the key fact (verbatim), in the audience's voice
(the owner hears "you", others hear about the owner by name and pronouns), dated as people write
dates; someone else's words are quoted. The reasoning steps say in plain sentences which memory
gives the answer. A share of the facts also gets a question in a test phrasing: that is the
held-out split.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from core.calendar import MONTH_NAMES
from memory.models import Kind, Memory
from training.synthesize.drafts import Draft
from training.synthesize.grammar import (
    RELATIVE_TIME,
    Clause,
    analyse,
    base_form,
    noun_phrase,
)
from training.synthesize.material import Fact, Material
from training.synthesize.passages import (
    ISO_DATE,
    MONTHS,
    WEEKDAYS,
    Passage,
    Span,
    SpanKind,
    find_spans,
    italic_phrases,
    span_kind,
    speak_dates,
    strip_symbols,
    word_set,
)
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
    TOPIC_NOTE,
    WEEKDAY,
    WHEN,
    WHERE,
    WHO_OBJECT,
    WHO_SUBJECT,
    Phrasings,
    Template,
)
from training.synthesize.voice import lower_first, to_first_person
from twin.privacy import AudienceKind
from twin.tasks import WITHHELD, TaskKind

# A reply quotes at most this much of a memory: enough for the fact, short enough to learn.
ANSWER_CHARS = 160
MAX_QUESTION_WORDS = 18
DECLINE_FACT = "decline:"
MAX_SPANS_PER_PASSAGE = 3
TOPIC_BESIDES = 0.3
_PREPOSITION = re.compile(
    r"\b(on|in|at|since|by|from|until|till|for|every|to|with|around|near|across|of|between"
    r"|about|after|before|during|under|over|into|through)\s+(?:the\s+|an?\s+)?$",
    re.IGNORECASE,
)
# Clause boundaries: punctuation (not the colon of 19:30 or the comma of 18,000), dashes, and
# "and"/"but"/"so" before a new subject.
_CLAUSE_BREAK = re.compile(
    r"\s*(?:[;(){}\[\]]|(?<!\d)[:,]|[:,](?!\d)|\s[–—-]\s)\s*"
    r"|\s(?:and|but|so)\s(?=(?:I|I'm|I've|I'll|we|we're|he|she|it|it's|they|there)\b)"
)
# What is left in a clause that is really two ("wet and slippy, and I'm carrying…"), or a
# comparison ("further than Lisbon is"): no question reads well around a gap in it.
_NOT_ONE_CLAUSE = re.compile(r"(?<!\d)[,;:]|[,;:](?!\d)|\s[–—-]\s|\bthan\b")
# A subject in the rest of a clause starts a second one ("…did a piece I'm squinting in").
_SECOND_SUBJECT = re.compile(
    r"\b(?:I|I['’](?:m|ve|ll|d)|you|you['’](?:re|ve|ll|d)|he|she|it['’]s|they|we"
    r"|where|when|who|what|which|why|how|whether)\b"
)
# "…and haven't looked back": a second predicate of the same subject, which a question leaves out.
_SECOND_PREDICATE = re.compile(r"\s(?:and|but)\s+(?=[a-z]+(?:n['’]t)?\b)")
# "…and then the full greyhound collapse": "and" before a new subject or "then" ends a clause.
_NEXT_CLAUSE = re.compile(
    r"\s(?:and|but)\s+(?:then|the|a|an|my|his|her|their|its|it|he|she|they|we|you)\b"
)
_PAST_FRAME = re.compile(r"\bwas it that\b|\bwhat was the date\b", re.I)
_LEADING_LINK = re.compile(r"^(?:and|but|so|or|then|which|because|while|when)\s+", re.I)
_TIME_UNITS = frozenset(["minutes", "min", "hours", "days", "weeks", "months", "years"])
_DISTANCE_UNITS = frozenset(["km", "m", "cm", "mm"])
_ME = re.compile(r"\b(?:me|myself)\b", re.I)
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours)\b", re.I)
_WRITER = re.compile(r"\b(?:I|I['’]\w+|me|my|mine|myself)\b", re.I)
_TITLE_NOISE = re.compile(r"\s*\((?:research )?notes\)|\s+notes$|^journal,\s*", re.I)
# A note title's first part: "Paper, Animal Behaviour" → "Paper", "Home (flat details)" → "Home".
_TITLE_PART = re.compile(r"\s*[,(:;]\s*|\s+[–—-]\s+")
# Titles that already say what kind of note they are: "my climbing log", not "…log notes".
_NOTE_WORDS = word_set("log notes journal diary list plan plans tracker")
# The determiners of a thing the owner writes about, and of one someone else writes to them
# about ("your dad": the owner's; "his" or "my" in someone else's message are not).
_OWN_DETERMINERS = word_set("the my our")
_OTHERS_DETERMINERS = word_set("the your")
_THE = word_set("the")
# A heading made of these is no thing to ask about ("Optionally", "Best with", "Naming it").
_NOT_HEADING = word_set(
    "a an the and or but if then to of for with without by from in on at as into about after"
    " before over under between this that these those it its me my you your he him his she her"
    " they them their we us our next last first best worst other more most less least also"
    " only just even still very so such can't don't is was are were be see give tell"
)
_ADJECTIVE_ENDINGS = ("ly", "est", "ive", "ous", "ful", "less", "ish")
# Kin people write as names ("Mum: …"), capitalised.
_KIN = word_set(
    "mum mom mam mother dad father sister brother grandma granny gran nan nana grandad"
    " grandpa grandmother grandfather aunt auntie uncle"
)
_MONTH_OR_DAY = re.compile(rf"^(?:{MONTHS}|{WEEKDAYS})\.?$", re.I)
_NAMED_YEAR = re.compile(r"^[A-Z][\w'’-]+ (?:19|20)\d{2}$")
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
# Words of a message that tell time from its own day; retold later they need "that day".
_THAT_DAY: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\btoday\b"), "that day"),
    (re.compile(r"\btonight\b"), "that night"),
    (re.compile(r"\bthis (morning|afternoon|evening)\b"), r"that \1"),
    (re.compile(r"\blast night\b"), "the night before"),
    (re.compile(r"\byesterday\b"), "the day before"),
    (re.compile(r"\btomorrow\b"), "the next day"),
)
_TODAY = re.compile(r"\s*\b(?:today|tonight)\b(?!['’])")
# What a step says a memory gives, by the kind of answer.
_WHAT = {
    SpanKind.DATE: "date",
    SpanKind.WEEKDAY: "day",
    SpanKind.YEAR: "year",
    SpanKind.TIME: "time",
    SpanKind.DURATION: "time",
    SpanKind.MONEY: "amount",
    SpanKind.QUANTITY: "number",
    SpanKind.TITLE: "title",
    SpanKind.PERSON: "name",
    SpanKind.PLACE: "place",
    SpanKind.NAME: "name",
}


@dataclass(frozen=True)
class Phrased:
    """A question in one phrasing, with the template it came from."""

    template: Template
    text: str


@dataclass(frozen=True)
class _Heading:
    """How a note's heading is asked about: its family and the words for {label}."""

    family: Phrasings
    label: str


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
        self.voice = material.voice
        self._askers = sorted(material.lexicon.people)
        self._memories = {m.id: m for m in material.memories}
        self._names = material.lexicon.proper | material.lexicon.people | {material.first_name}

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
        ][:3]
        lines = [self.voice.say(_sentence(f.first_person), named=True) for f in about]
        if owner_asks:
            intro = (
                f"I'm your AI twin, {self.m.first_name}: I answer from your notes and chats, "
                "the way you would."
            )
        else:
            shared = "shared with friends" if self.kind == AudienceKind.FRIEND else "made public"
            told = self.voice.say(f"for me, from what I have {shared}.", named=True)
            intro = f"I'm the AI twin of {self.m.owner}. I answer {told}"
        answer = " ".join([intro, *lines])
        support = tuple(dict.fromkeys(s for f in about for s in f.support))
        keys = tuple(f.value for f in about)
        steps = ("The question is who I am.", *lines)
        drafts = []
        for split in (Split.TRAIN, Split.TEST):
            for template in phrasings.of(split):
                drafts.append(
                    Draft(
                        kind=TaskKind.IDENTITY,
                        text=template.text,
                        answer=answer,
                        support=support,
                        key_facts=keys,
                        steps=steps,
                        template=template.id,
                        split=split,
                        asker=self._asker(template.text),
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
            what = private.category.format(their=self.voice.owners())
            steps = (f"This asks for {what}.", "That stays private, so I don't share it.")
            for split in (Split.TRAIN, Split.TEST):
                for template in private.phrasings.of(split):
                    text = self._friend_asks(template.text)
                    drafts.append(
                        Draft(
                            kind=TaskKind.MEMORY_QA,
                            text=text,
                            answer=WITHHELD,
                            steps=steps,
                            template=template.id,
                            split=split,
                            asker=self._asker(text),
                            fact=f"{DECLINE_FACT}{private.phrasings.family}",
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
        if ISO_DATE.search(span.text):
            return  # a machine date in a note: no one asks for it in that form
        before = passage.text[: span.start]
        prep_match = _PREPOSITION.search(before)
        prep = prep_match.group(1).lower() if prep_match else ""
        cut = prep_match.start() if prep_match else span.start
        at_start = not passage.text[: span.start].strip(' -–*"“')
        if span.kind in (SpanKind.PERSON,) and at_start:
            yield from self._who_subject(passage, span)
            return
        if span.kind in (SpanKind.QUANTITY, SpanKind.MONEY) and at_start:
            yield from self._how_many_subject(passage, span)
            return
        # "Where did I move to?": a preposition left at the end closes the clause there
        stranded = (span.kind == SpanKind.PLACE and prep in ("to", "from")) or (
            span.kind == SpanKind.PERSON and prep in ("with", "to", "for", "from", "by")
        )
        following = re.match(r"\s*([\w'’-]+)", passage.text[span.end :])
        if span.kind == SpanKind.PLACE and following and _modifier_word(following.group(1)):
            return  # "the Graça community orchestra": the place only describes the thing
        whole = _clause_around(passage.text[:cut] + " " + passage.text[span.end :], cut)
        if re.search(r"\bthan\b", whole):
            return  # a comparison: "further from Edinburgh than Lisbon is"
        after = "" if stranded else " " + passage.text[span.end :]
        rest = passage.text[:cut] + after
        text = _first_predicate(_clause_around(rest, cut))
        clause = self._clause(_tidy(RELATIVE_TIME.sub("", text)), passage)
        if clause is None:
            return
        family, values = self._frame(span, prep, clause)
        if family is None:
            return
        lead = f"says {self._told(clause.declarative())}"
        yield from self._drafts(
            passage,
            span.text,
            family,
            values,
            what=_what(span),
            lead=lead,
            temporal=span.kind.temporal,
        )

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
        text = _tidy(RELATIVE_TIME.sub("", _clause_around(passage.text, 0)))
        clause = analyse(text, owner_speaks=False, names=frozenset({span.text}))
        if clause is None or clause.subject != span.text or _NOT_ONE_CLAUSE.search(text):
            return
        values = {"pred": clause.predicate()}
        lead = f"says who {self._told(clause.predicate())}"
        yield from self._drafts(passage, span.text, WHO_SUBJECT, values, what="name", lead=lead)

    def _how_many_subject(self, passage: Passage, span: Span) -> Iterator[Draft]:
        unit = span.text.split()[-1] if " " in span.text else ""
        after = _tidy(RELATIVE_TIME.sub("", _clause_around(passage.text[span.end :], 0)))
        words = after.split()
        if (
            not unit.isalpha()
            or not words
            or base_form(words[0]) is None
            or _NOT_ONE_CLAUSE.search(after)
        ):
            return
        values = {"unit": unit.lower(), "pred": after}
        lead = f"says how many {unit.lower()} {self._told(after)}"
        yield from self._drafts(passage, span.text, HOW_MANY_SUBJECT, values, "number", lead)

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
        lead = f"says {self._told(clause.declarative())}"
        yield from self._drafts(
            passage, passage.when, WHEN, values, what="date", lead=lead, dated=True
        )

    def _from_label(self, passage: Passage) -> Iterator[Draft]:
        label, value = passage.label, passage.value.strip()
        if " " not in value and re.search(r"[-/]", value):
            return  # a link to another note, not a fact
        value = value[:1].upper() + value[1:]  # the reply opens on it
        notes = self._notes(passage.topic)
        heading = self._heading(re.sub(r"^(?:the|a|an)\s+", "", label, flags=re.I))
        key = _first_clause(value)
        if not key or notes is None or heading is None or ISO_DATE.search(key):
            return
        values = {"notes": notes, "label": heading.label}
        lead = f"has an entry for {heading.label}"
        yield from self._drafts(
            passage, key, heading.family, values, what=None, lead=lead, answer=value
        )

    def _heading(self, label: str) -> _Heading | None:
        """How a note's heading is asked about: a date ("6 Jun 2026", "Christmas 2025"), a
        name ("Mosteiros", "Dad") or a thing ("the favourite toy"); None for a heading that
        names none of these ("Optionally", "Best with", "Km 10")."""
        words = label.split()
        if not words or len(words) > 4:
            return None
        if (
            span_kind(label, self.m.lexicon) == SpanKind.DATE
            or _MONTH_OR_DAY.match(label)
            or _NAMED_YEAR.match(label)
        ):
            return _Heading(LABEL_DATE, speak_dates(label))
        if _ME.search(label) or _SECOND_PERSON.search(label):
            return None
        if self._is_name(label) or (len(words) == 1 and label.lower() in _KIN):
            return _Heading(LABEL_NAME, label[0].upper() + label[1:])
        folded = [w.lower() for w in words]
        if (
            not all(re.fullmatch(r"[^\W\d_]+(?:-[^\W\d_]+)*", w) for w in words)
            or any(w in _NOT_HEADING for w in folded)
            or folded[-1].endswith(_ADJECTIVE_ENDINGS)
            or base_form(folded[0]) is not None
        ):
            return None
        thing = self._lower(label)
        plural = thing.endswith("s") and not thing.endswith("ss")
        return _Heading(LABEL, thing if plural else f"the {thing}")

    def _notes(self, topic: str) -> str | None:
        """A note as its owner names it: "my climbing log", "my food notes", "my note of
        8 November 2026", "my notes about me"."""
        title = _TITLE_NOISE.sub("", _TITLE_PART.split(topic.strip())[0]).strip()
        if not title or not re.search(r"[^\W\d_]", title):
            return None
        if span_kind(title, self.m.lexicon) == SpanKind.DATE:
            return f"my note of {speak_dates(title)}"
        words = self._lower(title, keep_unknown=True)
        if words.lower().startswith("about "):
            return f"my notes {words}"
        if words.split()[-1].lower() in _NOTE_WORDS:
            return f"my {words}"
        return f"my {words} notes"

    def _from_topic(self, passage: Passage, spans: list[Span]) -> Iterator[Draft]:
        if not passage.by_owner:
            yield from self._from_said(passage, spans)
            return
        names = [s for s in spans if s.kind in (SpanKind.NAME, SpanKind.PERSON, SpanKind.PLACE)]
        if names:
            entity, family = names[0].text, TOPIC
            values = {"entity": entity}
        elif passage.topic and self.rng.random() < 0.5:
            notes = self._notes(passage.topic)
            if notes is None:
                return
            entity, family = passage.topic, TOPIC_NOTE
            values = {"notes": notes}
        else:
            return
        found = self._thing(passage.text, _OWN_DETERMINERS, avoid=entity)
        if found is None:
            return
        keyword, thing = found
        if len(passage.text.split()) < len(thing.split()) + 3:
            return  # "My big sister.": nothing to tell beyond the thing itself
        fact = next((s for s in spans if s.text != entity), None)
        values["thing"] = thing
        lead = f"mentions {self._told(thing)}"
        key, what = (fact.text, _what(fact)) if fact else (keyword, None)
        yield from self._drafts(passage, key, family, values, what=what, lead=lead)

    def _from_said(self, passage: Passage, spans: list[Span]) -> Iterator[Draft]:
        who = (passage.memory.author or "").split()[0] if passage.memory.author else ""
        found = self._thing(passage.text, _OTHERS_DETERMINERS)
        if not who or found is None or len(passage.text.split()) < 6:
            return
        keyword, thing = found
        # the writer's "your" is the owner's: the question is written as the owner asks it
        thing = re.sub(r"^your\b", "my", thing)
        key, what = (spans[0].text, _what(spans[0])) if spans else (keyword, None)
        values = {"who": who, "thing": thing}
        lead = f"is about {self._told(thing)}"
        yield from self._drafts(passage, key, SAID, values, what=what, lead=lead)

    def _thing(
        self, text: str, determiners: frozenset[str], avoid: str = ""
    ) -> tuple[str, str] | None:
        """The most distinctive word of `text` that is the noun of a phrase with one of
        `determiners`, and that phrase ("stitches", "the stitches"); None when there is none."""
        for word in self.m.distinctive_words(text, avoid=avoid):
            phrase = noun_phrase(text, word, determiners)
            if phrase is not None:
                return word, phrase
        return None

    def _is_name(self, phrase: str) -> bool:
        words = phrase.split()
        known = self.m.lexicon.proper | self.m.lexicon.people
        return words[0] in known or (len(words) > 1 and all(w[:1].isupper() for w in words))

    def _lower(self, phrase: str, *, keep_unknown: bool = False) -> str:
        """`phrase` in lower case, except the names in it (and, `keep_unknown`, the words
        memory never writes in lower case: a title's "Monterey application")."""
        lexicon = self.m.lexicon
        known = lexicon.proper | lexicon.people
        return " ".join(
            w if w in known or (keep_unknown and w.lower() not in lexicon.common) else w.lower()
            for w in phrase.split()
        )

    # -- facts ---------------------------------------------------------------------------------

    def _from_fact(self, fact: Fact) -> Iterator[Draft]:
        attribute = fact.attribute
        if attribute.startswith("relation:"):
            family, values = RELATION_FACT, {"relation": attribute.split(":", 1)[1]}
        elif attribute in FACTS:
            family, values = FACTS[attribute], {}
        else:
            family, values = OTHER_FACT, {"attribute": attribute.replace("_", " ")}
        answer = self.voice.say(_sentence(fact.first_person))
        if fact.value not in answer:
            return
        source = self._memories.get(fact.support[0]) if fact.support else None
        told = self._told(fact.first_person.rstrip("."))
        first = f"{self._source(source)} says {told}." if source else _sentence(answer)
        steps = (first, f"That gives the answer: {fact.value}.")
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
                asker=self._asker(phrased.text),
                fact=f"fact:{attribute}:{fact.value}",
            )

    # -- shared --------------------------------------------------------------------------------

    def _clause(self, text: str, passage: Passage) -> Clause | None:
        names = self.m.lexicon.proper | self.m.lexicon.people
        if _NOT_ONE_CLAUSE.search(text):
            return None
        clause = analyse(text, owner_speaks=self._owner_speaks(passage, text), names=names)
        if clause is None:
            return None
        if not passage.by_owner and (clause.subject in ("I", "we") or _WRITER.search(text)):
            return None  # someone else's "I" and "my" are not the owner's
        if clause.subject == "we" and self.kind != AudienceKind.OWNER:
            return None  # a friend's "we" would be the friend's own
        if len(clause.rest.split()) > 12 or _SECOND_PERSON.search(clause.declarative()):
            return None
        if _SECOND_SUBJECT.search(clause.rest):
            return None
        return clause

    def _drafts(
        self,
        passage: Passage,
        key: str,
        family: Phrasings,
        values: dict,
        what: str | None,
        lead: str,
        *,
        answer: str | None = None,
        temporal: bool = False,
        dated: bool = False,
    ) -> Iterator[Draft]:
        """One fact's drafts: its training phrasings, and a test phrasing for some facts.
        `lead` is what the first reasoning step says of the memory ("says she ran the half"),
        `what` the kind of answer the second names ("date"; None: the first step is enough)."""
        reply = self._answer(passage, answer or passage.text, key, temporal, dated)
        if reply is None:
            return
        memory = passage.memory
        steps = [f"{self._source(memory)} {lead}."]
        if dated:
            kind = "message" if memory.kind == Kind.CHAT else "note"
            steps.append(f"It happened on the day of the {kind}: {passage.when}.")
        elif what:
            steps.append(f"It gives the {what}: {key}.")
            if temporal and memory.timestamp and not _YEAR.search(key):
                steps.append(f"It was written in {_month_year(memory.timestamp)}.")
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
                asker=self._asker(phrased.text),
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
            asked = self.voice.ask(text, self.voice.form(self.rng))
            yield split, Phrased(template, asked)

    def _friend_asks(self, question: str) -> str:
        """A question written to the owner ("What's your address?"), as a friend asks it: to
        the owner, or about them by name or pronoun."""
        owner_words = to_first_person(question)
        if owner_words is None:
            return question
        return self.voice.ask(owner_words, self.voice.form(self.rng))

    def _answer(
        self, passage: Passage, text: str, key: str, temporal: bool, dated: bool
    ) -> str | None:
        """The reply: the memory's words (cut around the key fact) in the audience's voice,
        dated when the question is about time, or quoted when someone else wrote them."""
        text = strip_symbols(text).strip()
        # a date from the memory's timestamp is not in its text: the text is cut from its start
        text = _concise(text, text.split()[0] if dated and text else key)
        if text is None:
            return None
        text = speak_dates(text)
        when = passage.when
        if passage.by_owner:
            words = self._with_subject(text, passage)
            if dated:  # "On 6 November 2025, you submitted your paper!" (not "…that day")
                words = _TODAY.sub("", words)
            if passage.memory.timestamp is not None:
                words = _that_day(words)
            words = _ended(words[:1].upper() + words[1:])
            if dated:
                words = f"On {when}, {self._lower_first(words)}"
            elif temporal and when and not _YEAR.search(key):
                words = f"{words.rstrip('.')} (I wrote this on {when})."
            body = self.voice.say(words)
        else:
            who = (passage.memory.author or "Someone").split()[0]
            quote = text.lstrip("-–—•* ")
            body = f'On {when}, {who} wrote: "{quote}"' if when else f'{who} wrote: "{quote}"'
        return body if key in body else None

    def _with_subject(self, text: str, passage: Passage) -> str:
        """The owner's "Signed up on…" with the owner put back in: "I signed up on…" (where
        the owner is the one who leaves themselves out, as `_clause` reads it)."""
        first, _, rest = text.partition(" ")
        if (
            rest
            and self._owner_speaks(passage, text)
            and first not in self._names
            and first[:1].isupper()
            and base_form(first) is not None
        ):
            return f"I {first.lower()} {rest}"
        return text

    def _owner_speaks(self, passage: Passage, text: str) -> bool:
        """Whether a clause of `passage` with no subject has the owner as its subject: the
        owner wrote it, not in a note about someone else ("Biscuit": "Came with me…"), and
        not right after a sentence about someone else ("The octopus was hunting. Went
        white…")."""
        names = self.m.lexicon.proper | self.m.lexicon.people
        about_other = bool(passage.topic) and passage.topic.split()[0] in names
        return (
            passage.by_owner and not about_other and not _ME.search(text) and _owner_before(passage)
        )

    def _lower_first(self, text: str) -> str:
        return lower_first(text, self._names)

    def _told(self, owner_words: str) -> str:
        """Owner's words as a step retells them after "…says": "she ran the half"."""
        return self._lower_first(self.voice.say(owner_words, named=True))

    def _source(self, memory: Memory) -> str:
        """The memory a step cites, opening a sentence: "Iris's note of 16 March 2026"."""
        source = self.voice.source(memory)
        return source[:1].upper() + source[1:]

    def _asker(self, question: str) -> str | None:
        """Who asks: the owner is never named; a friend is sometimes one of the people in
        memory (never one the question is about), sometimes unnamed (as over MCP)."""
        if self.kind == AudienceKind.OWNER or not self._askers or self.rng.random() < 0.5:
            return None
        asker = self.rng.choice(self._askers)
        return None if re.search(rf"\b{re.escape(asker)}\b", question) else asker


# -- text helpers ------------------------------------------------------------------------------


def _owner_before(passage: Passage) -> bool:
    """Whether the sentence before `passage` on its line (if any) is the owner's own ("I…"):
    a sentence with no subject continues the one before it."""
    text = passage.memory.text
    at = text.find(passage.text[:24])
    if at < 0:
        return True  # rebuilt text (a table row, cleaned Markdown): read on its own
    line = text[text.rfind("\n", 0, at) + 1 : at]
    previous = [s for s in re.split(r"(?<=[.!?])\s+", line.strip()) if s]
    return not previous or bool(re.match(r"(?:[-*•]\s*)?I\b", previous[-1]))


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
    and dashes, and at "and"/"but"/"so" before a new subject), without a leading "and",
    "but"…; with the clause before when it is short and has no subject of its own."""
    parts: list[tuple[int, int, bool]] = []
    start, own_subject = 0, False
    for match in _CLAUSE_BREAK.finditer(text):
        parts.append((start, match.start(), own_subject))
        start = match.end()
        own_subject = match.group(0).strip() in ("and", "but", "so")
    parts.append((start, len(text), own_subject))
    for i, (a, b, own) in enumerate(parts):
        if a <= position <= b + 1:
            chosen = text[a:b]
            if len(chosen.split()) < 3 and i > 0 and not own:
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


def _that_day(text: str) -> str:
    """A message's "today", "this morning"… as a later retelling says them ("that day")."""
    for pattern, replacement in _THAT_DAY:
        text = pattern.sub(replacement, text)
    return text


def _first_clause(value: str) -> str:
    """The first clause of a heading's value (not cut inside "€6,200" or "1.5 km"), without
    the quotation marks around it."""
    clause = re.split(r"(?<!\d)[,.]|[,.](?!\d)|[;(]|\s[–—-]\s", value, maxsplit=1)[0]
    clause = clause.strip().strip('"“”').strip()
    return clause if 0 < len(clause) <= 60 else ""


def _first_predicate(clause: str) -> str:
    """A clause without a second predicate of its subject ("I moved to Lisbon in 2024 and
    haven't looked back" → "I moved to Lisbon in 2024")."""
    next_clause = _NEXT_CLAUSE.search(clause)
    if next_clause:
        clause = clause[: next_clause.start()]
    for match in _SECOND_PREDICATE.finditer(clause):
        word = re.match(r"[a-z'’]+", clause[match.end() :])
        if word and _predicate_word(word.group(0)):
            return clause[: match.start()]
    return clause


def _predicate_word(word: str) -> bool:
    folded = word.replace("’", "'")
    return (
        folded.endswith("n't")
        or folded in ("am", "is", "are", "was", "were", "have", "has", "had", "will", "would")
        or base_form(folded) is not None
    )


def _modifier_word(word: str) -> bool:
    """Whether `word`, after a name, makes the name describe it ("Graça community")."""
    return word.islower() and word.isalpha() and noun_phrase(f"the {word}", word, _THE) is not None


def _what(span: Span) -> str:
    """What a step says a span gives: "date", "place", "time" (for "how long")…"""
    if span.kind in (SpanKind.QUANTITY, SpanKind.DURATION, SpanKind.MONEY):
        measure = _measure(span)
        if measure == "long":
            return "time"
        if measure == "much":
            return "amount"
        return "number"
    return _WHAT.get(span.kind, "answer")


def _ended(text: str) -> str:
    """`text` as a sentence: ending in a full stop unless it ends in punctuation already."""
    text = text.rstrip()
    return text if not text or text[-1] in '.!?…"”)' else text + "."


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _month_year(when: datetime) -> str:
    return f"{MONTH_NAMES[when.month - 1]} {when.year}"
