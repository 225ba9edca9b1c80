"""Reading a question before it is searched: who it is about, in whose voice, and when.

People ask a twin about its owner in the third person ("Where does Iris work?", "What's her
sister called?") or, as the owner, in the first; memory holds the owner's answers in the first
person ("I work at…", "my sister Maya"). So a question is rewritten into the voice of the person
it is about before it is embedded ("Where do I work?"), and that person's own memories are
ranked up. Who a word stands for depends on who asks:

- the owner's names and aliases, and the names the owner's messages carry, are the owner;
- from the owner, "I/me/my" are the owner; from anyone else, "you/your" are (the twin speaks
  for its owner), and so are "she/he/her/his" when no one else is named;
- another speaker's name is that speaker, and "she/he/her/his" are them when they are the only
  one named;
- a kin word after a possessive ("Iris's dad", "her sister", "my mum") is the owner's kin, to be
  resolved through memory (`memory.people`); after another speaker's name it is theirs.

Names are taken out of the lexical query (every "thanks Tomás!" would match otherwise); times
are read by `memory.timeref` and taken out of both queries, since they are matched against the
memories' dates instead. Nothing here reads memory: the caller passes the names it may use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from memory.lexical import content_words
from memory.models import AskedBy
from memory.people import Relative, kin_role
from memory.profile.index import FactMatch
from memory.timeref import TimeReference, read_time


class AnswerKind(StrEnum):
    """What kind of thing a question asks for, when its wording says so."""

    DATE = "date"  # "when did…", "what day…"
    PERSON = "person"  # "who…", "what's her sister's name?"
    NUMBER = "number"  # "how many…", "how long…"
    PLACE = "place"  # "where…", "which city…"


_ASKS = [
    (
        AnswerKind.NUMBER,
        re.compile(r"\bhow (?:many|much|long|old|far|often)\b|\bwhat time\b", re.I),
    ),
    (AnswerKind.PERSON, re.compile(r"^\W*(?:who|whom|whose)\b|\bwith whom\b", re.I)),
    (
        AnswerKind.PLACE,
        re.compile(r"^\W*where\b|\b(?:which|what) (?:city|country|town|island|place|part)\b", re.I),
    ),
]
_NAME_QUESTION = re.compile(r"\b(?:name|called|named)\b", re.I)


def answer_kind(question: str, asks_when: bool) -> AnswerKind | None:
    """What kind of answer `question` wants, or None when its wording does not say."""
    if asks_when:
        return AnswerKind.DATE
    for kind, pattern in _ASKS:
        if pattern.search(question):
            return kind
    if re.match(r"^\W*what", question, re.I) and _NAME_QUESTION.search(question):
        return AnswerKind.PERSON
    return None


@dataclass(frozen=True)
class Person:
    """Someone a question names: the owner, or a speaker by the author name memory stores."""

    author: str | None = None

    @property
    def is_owner(self) -> bool:
        return self.author is None


OWNER = Person()


@dataclass(frozen=True)
class QueryPlan:
    """A question, read: what to match lexically, what to embed, whose memories to rank up,
    whose kin it asks about, and the time it names."""

    query: str
    lexical: str
    dense: str
    about_owner: bool = False
    speakers: tuple[str, ...] = ()
    # kin words the question asks about for the owner ("dad", "sister")
    owner_kin: tuple[str, ...] = ()
    # who those kin words turned out to be (filled in by the retriever, from memory)
    relatives: tuple[Relative, ...] = ()
    # L1 facts about the owner the question matches (filled in by the retriever)
    facts: tuple[FactMatch, ...] = ()
    # what kind of answer the question wants ("when…" a date), if its wording says
    answer: AnswerKind | None = None
    time: TimeReference = field(default_factory=lambda: TimeReference(None, False))

    @property
    def names_people(self) -> bool:
        return self.about_owner or bool(self.speakers)


_TOKEN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
_POSSESSIVE = r"(?:['’]s|['’])?"

# Before a subject: the start of a clause, a question word, an auxiliary or a conjunction.
_SUBJECT_LEADS_TEXT = """
    what when where who whom whose which why how do does did is was are were has have had
    can could will would should may might must shall and or but that if while whether than
    doesn't didn't isn't wasn't aren't weren't hasn't haven't hadn't can't couldn't won't
    wouldn't shouldn't"""
_SUBJECT_LEADS = frozenset(_SUBJECT_LEADS_TEXT.split())
# After "her": words that show it is an object ("with her", "tell her about"), not "her dog".
_NOT_A_NOUN_TEXT = """
    a an the and or but to for with about from at of by on in into over after before since
    than then that this these those is was are were do does did has have had can could will
    would should may might must so if when where who what why how up down out off again too
    very just yet ever"""
_NOT_A_NOUN = frozenset(_NOT_A_NOUN_TEXT.split())
_AUX_FOR_I = {
    "does": "do",
    "is": "am",
    "has": "have",
    "are": "am",
    "were": "was",
    "doesn't": "don't",
    "isn't": "am not",
    "hasn't": "haven't",
    "aren't": "am not",
    "weren't": "wasn't",
}
_SUBJECT_WORDS = frozenset(["she", "he", "you"])
_OBJECT_WORDS = frozenset(["him"])
_POSSESSIVE_WORDS = frozenset(["his", "your"])
_THIRD_PERSON = frozenset(
    ["she", "he", "her", "his", "him", "hers", "herself", "himself", "she's", "he's"]
)
_SECOND_PERSON = frozenset(
    ["you", "your", "yours", "yourself", "you're", "you've", "you'll", "you'd"]
)
_FIRST_PERSON = frozenset(["i", "me", "my", "mine", "myself", "i'm", "i've", "i'll", "i'd"])
_CONTRACTIONS_FOR_I = {
    "you're": "I'm",
    "you've": "I've",
    "you'll": "I'll",
    "you'd": "I'd",
    "she's": "I'm",
    "he's": "I'm",
    "she'll": "I'll",
    "he'll": "I'll",
    "she'd": "I'd",
    "he'd": "I'd",
}
_REFLEXIVE = frozenset(["herself", "himself", "yourself"])
_MINE = frozenset(["hers", "yours"])
# Words ending in "s" that are not verbs in the third person.
_NOT_VERB_S_TEXT = "always has was is this his us as plus perhaps sometimes"
_NOT_VERB_S = frozenset(_NOT_VERB_S_TEXT.split())


@dataclass
class _Token:
    text: str
    person: Person | None = None
    # a name or pronoun that refers to `person`; possessive: "Iris's", "her dog", "your"
    possessive: bool = False
    is_name: bool = False

    @property
    def folded(self) -> str:
        return self.text.casefold().replace("’", "'")


class QueryReader:
    """Reads questions for one store's people (the names a filter lets the asker see)."""

    def __init__(self, owner_names: Iterable[str], speakers: Iterable[str]) -> None:
        self.names: dict[str, Person] = {}
        for name in owner_names:
            self._add(name, OWNER)
        for author in speakers:
            self._add(author, Person(author))
        keys = sorted(self.names, key=len, reverse=True)
        self._pattern = (
            re.compile(
                r"(?<![\w.])(" + "|".join(re.escape(k) for k in keys) + r")(" + _POSSESSIVE + r")"
                r"(?![\w])",
                re.IGNORECASE,
            )
            if keys
            else None
        )

    def _add(self, name: str, person: Person) -> None:
        name = " ".join(name.split())
        if not name:
            return
        keys = [name.casefold()]
        words = name.split()
        if len(words) > 1 and _plain_name(words[0]):
            keys.append(words[0].casefold())
        for key in keys:
            if not _plain_name(key):
                continue
            # The owner wins a name they share with a speaker; otherwise the first author does.
            if key not in self.names or (person.is_owner and not self.names[key].is_owner):
                self.names[key] = person

    def read(
        self,
        query: str,
        asker: AskedBy,
        now: datetime,
        *,
        answer_frame: bool = True,
        times: bool = True,
    ) -> QueryPlan:
        """The plan for `query` asked by `asker` on `now`; with `answer_frame`, the words that
        say what kind of answer is wanted are left out of the lexical query, and with `times`
        the times it names are read as a window (and left out of both queries)."""
        time = read_time(query, now) if times else TimeReference(None, False)
        text = time.without_times(query) if time.window else query
        if not text.strip():
            text = query
        tokens = self._tokens(text)
        persons = self._resolve(tokens, asker)
        about_owner = OWNER in persons
        target = OWNER if about_owner else (persons[0] if len(persons) == 1 else None)
        dense = _detokenize(_in_voice(tokens, target)) if target else text
        kept = [
            t
            for i, t in enumerate(tokens)
            if not (t.is_name and t.person is not None and not _kin(t))
            and not (answer_frame and _frame_word(tokens, i))
        ]
        # words only: FTS5 ignores the rest, and so does an embedding of the words alone
        lexical = " ".join(t.text for t in kept if t.text[:1].isalnum() or t.text[:1] == "_")
        # A question that is only a name and its frame ("Who is Tomás?") is answered by what
        # others say about them: keep the name, and do not ask it in their voice ("Who am I?").
        only_a_name = not content_words(lexical)
        if len(kept) == len(tokens) or only_a_name:
            lexical = text
        if only_a_name and target is not OWNER:
            dense = text
        return QueryPlan(
            query=query,
            lexical=lexical if lexical.strip() else text,
            dense=dense,
            about_owner=about_owner,
            speakers=tuple(sorted({p.author for p in persons if p.author is not None})),
            owner_kin=tuple(dict.fromkeys(_owner_kin(tokens))),
            time=time,
            answer=answer_kind(query, time.asks_when),
        )

    # -- the parts ---------------------------------------------------------------------------

    def _tokens(self, text: str) -> list[_Token]:
        tokens: list[_Token] = []
        last = 0
        for match in self._pattern.finditer(text) if self._pattern else ():
            tokens.extend(_Token(t) for t in _TOKEN.findall(text[last : match.start()]))
            person = self.names[" ".join(match.group(1).split()).casefold()]
            tokens.append(_Token(match.group(0), person, bool(match.group(2)), is_name=True))
            last = match.end()
        tokens.extend(_Token(t) for t in _TOKEN.findall(text[last:]))
        return tokens

    def _resolve(self, tokens: list[_Token], asker: AskedBy) -> list[Person]:
        """Mark each pronoun with whom it stands for; the people the question is about."""
        named = list(dict.fromkeys(t.person for t in tokens if t.person is not None))
        others = [p for p in named if not p.is_owner]
        third: Person | None = None
        if len(others) == 1:
            third = others[0]
        elif not others and (OWNER in named or asker == AskedBy.OTHER):
            third = OWNER
        for token in tokens:
            word = token.folded
            if token.person is not None:
                continue
            if word in _FIRST_PERSON and asker == AskedBy.OWNER:
                token.person = OWNER
                token.possessive = word in ("my", "mine")
            elif word in _SECOND_PERSON and asker == AskedBy.OTHER:
                token.person = OWNER
                token.possessive = word in ("your", "yours")
            elif word in _THIRD_PERSON and third is not None:
                token.person = third
                token.possessive = word in ("his", "hers")
        for i, token in enumerate(tokens):
            if token.folded == "her" and token.person is not None:
                following = tokens[i + 1].folded if i + 1 < len(tokens) else ""
                token.possessive = following.isalpha() and following not in _NOT_A_NOUN
        return list(dict.fromkeys(t.person for t in tokens if t.person is not None))


def _in_voice(tokens: list[_Token], target: Person) -> list[str]:
    """The question as `target` would ask it about themselves."""
    out: list[str] = []
    for i, token in enumerate(tokens):
        word = token.folded
        if token.person != target or word in _FIRST_PERSON:
            out.append(token.text)
            continue
        before = tokens[i - 1].folded if i else ""
        if token.possessive or word in _POSSESSIVE_WORDS:
            out.append("my")
        elif word in _MINE:
            out.append("mine")
        elif word in _REFLEXIVE:
            out.append("myself")
        elif word in _CONTRACTIONS_FOR_I:
            out.append(_CONTRACTIONS_FOR_I[word])
        elif word in _OBJECT_WORDS or (word == "her" and not token.possessive):
            out.append("me")
        elif word in _SUBJECT_WORDS or token.is_name:
            if i and before not in _SUBJECT_LEADS:
                out.append("me")
                continue
            if out and before in _AUX_FOR_I:
                out[-1] = _match_case(_AUX_FOR_I[before], out[-1])
            out.append("I")
            _agree_next(tokens, i, out)
        else:
            out.append(token.text)
    return out


def _agree_next(tokens: list[_Token], i: int, out: list[str]) -> None:
    """After a subject turned into "I" with nothing before it to agree ("Iris works" → "I
    work"), mark the next verb to agree too."""
    if i + 1 >= len(tokens) or (i and tokens[i - 1].folded in _AUX_FOR_I):
        return
    nxt = tokens[i + 1]
    word = nxt.folded
    if nxt.person is not None or not word.isalpha() or not word.islower():
        return
    if word in _AUX_FOR_I:
        tokens[i + 1] = _Token(_AUX_FOR_I[word])
    elif word.endswith("s") and len(word) > 3 and word not in _NOT_VERB_S and word[-2] != "s":
        tokens[i + 1] = _Token(_base_form(word))


def _base_form(verb: str) -> str:
    if verb.endswith("ies"):
        return verb[:-3] + "y"
    if verb.endswith(("ches", "shes", "xes", "oes", "zes")):
        return verb[:-2]
    return verb[:-1]


def _owner_kin(tokens: list[_Token]) -> list[str]:
    """Kin words the question uses for the owner's kin: after one of the owner's possessives
    ("Iris's dad", "her sister", "my mum"), or alone and capitalised, as a name ("Dad")."""
    out: list[str] = []
    skip = 0
    for i, token in enumerate(tokens):
        if skip:
            skip -= 1
            continue
        word = _kin_at(tokens, i)
        if word is None:
            continue
        skip = len(word.split()) - 1
        prev = tokens[i - 1] if i else None
        if prev is not None and prev.possessive:
            if prev.person == OWNER:
                out.append(word)
        elif token.text[:1].isupper() and (prev is None or prev.folded not in ("a", "an", "the")):
            out.append(word)
    return out


def _kin_at(tokens: list[_Token], i: int) -> str | None:
    """The kin word (one or two words) starting at token `i`, or None."""
    for n in (2, 1):
        words = [re.sub(r"['’]s?$", "", t.folded) for t in tokens[i : i + n]]
        if len(words) == n and kin_role(" ".join(words)):
            return " ".join(words)
    return None


def _frame_word(tokens: list[_Token], i: int) -> bool:
    """Whether token `i` says what kind of answer is wanted rather than what it is about: "name"
    in a what/which question ("What's my sister's name?", "the name of my starter") and a
    closing "called"/"named" ("What's my dog called?"). An answer rarely repeats these words,
    and memories that do ("Team name?") are seldom the answer."""
    word = tokens[i].folded
    opening = tokens[0].folded.split("'")[0] if tokens else ""
    if opening not in ("what", "which", "whats"):
        return False
    if word in ("name", "names"):
        return True
    rest = [t for t in tokens[i + 1 :] if t.text.strip("?.! ")]
    return word in ("called", "named") and not rest


def _kin(token: _Token) -> bool:
    """A speaker whose name is a kin word ("Dad"): the word stays in the lexical query."""
    return kin_role(re.sub(r"['’]s?$", "", token.text)) is not None


def _plain_name(key: str) -> bool:
    return bool(key) and key.casefold() not in _NOT_NAMES


# Words that must never be read as somebody's name, whatever a display name says.
_NOT_NAMES_TEXT = """
    a an and any are as at be but by can did do does for from had has have he her him his
    how i if in is it me my no not of on or our she so that the their them they this to up us
    was we were what when where which who why will with you your"""
_NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())


def _match_case(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() else word


def _detokenize(words: list[str]) -> str:
    text = " ".join(words)
    return re.sub(r"\s+([?.!,;:])", r"\1", text)
