"""Whose voice a sample speaks in.

The owner's memories are written in the first person ("I ran the half marathon"). The owner's
twin talks *to* the owner, so its replies say "you" (`to_second_person`); the shared twin talks
*about* the owner to a friend, so its replies name the owner and then use their pronouns
(`to_third_person`: "Iris ran the half marathon… she…"). Friends ask both ways: "Where do you
work?" and "Where does Iris work?" (`Voice.ask`).

"We", "us" and "our" are left alone on purpose: they include other people ("we're 2nd in the
league"), and "you" or "she" would lose them. So is anything in quotation marks: a quote is
someone's own words.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from core.calendar import spoken_date
from memory.models import Kind, Memory
from training.synthesize.grammar import base_form, third_person_singular
from training.synthesize.passages import word_set
from twin.config import Pronouns
from twin.privacy import AudienceKind

# -- shared ------------------------------------------------------------------------------------

# Quoted words are someone's own: no conversion touches them.
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”")
# "Calder I., Nair P." is an initial, not the pronoun.
_INITIAL = re.compile(r"[A-Z][a-z]+\s$")


_MASK = re.compile("\ue000(\\d+)\ue001")


def _outside_quotes(text: str, convert: Callable[[str], str]) -> str:
    """`convert` applied to `text` with its quotations masked (so that they keep their words,
    and the sentence around them stays one), then put back."""
    quotes = _QUOTED.findall(text)
    masked = _QUOTED.sub(lambda m: f"\ue000{quotes.index(m.group(0))}\ue001", text)
    return _MASK.sub(lambda m: quotes[int(m.group(1))], convert(masked))


def _sentence_start(text: str, at: int) -> bool:
    """Whether position `at` of `text` opens a sentence (or a line, or a list item)."""
    before = text[:at].rstrip()
    return not before or before[-1] in ".!?" or text[:at].endswith(("\n", "- "))


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


# -- the second person: the owner's twin talking to the owner ----------------------------------

# Contractions and verb forms that change with the subject, longest first.
_PHRASES: tuple[tuple[str, str], ...] = (
    (r"\bI am\b", "you are"),
    (r"\bI was\b", "you were"),
    (r"\bI wasn['’]t\b", "you weren't"),
    (r"\b[Aa]m I\b", "are you"),
    (r"\b[Ww]as I\b", "were you"),
    (r"\b[Ww]asn['’]t I\b", "weren't you"),
    (r"\b[Ii]['’]m\b", "you're"),
    (r"\b[Ii]['’]ve\b", "you've"),
    (r"\b[Ii]['’]d\b", "you'd"),
    (r"\b[Ii]['’]ll\b", "you'll"),
)
_WORDS = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
}
# chats often write "i"; "i.e." is not one
_WORD = re.compile(r"\b(I|i(?!\.\w)|[Mm]e|[Mm]y|[Mm]ine|[Mm]yself)\b")


def to_second_person(text: str) -> str:
    """`text` (the owner speaking) with the owner addressed instead: "I ran my race" becomes
    "you ran your race". A word that opens a sentence stays capitalised; quotes are kept."""
    return _outside_quotes(text, _second_person_part)


def _second_person_part(text: str) -> str:
    out = text
    for pattern, replacement in _PHRASES:
        out = re.sub(pattern, lambda m, r=replacement: _cased(m, r), out)
    return _WORD.sub(_swap, out)


def _swap(match: re.Match[str]) -> str:
    word = match.group(1)
    if _is_initial(match):
        return word
    return _cased(match, _WORDS[word.lower()])


def _is_initial(match: re.Match[str]) -> bool:
    after = match.string[match.end() : match.end() + 1]
    return (
        match.group(0) == "I"
        and after in ".,"
        and bool(_INITIAL.search(match.string[: match.start()]))
    )


def _cased(match: re.Match[str], replacement: str) -> str:
    """`replacement` capitalised when it starts a sentence (the replaced word's position)."""
    if _sentence_start(match.string, match.start()):
        return _capitalised(replacement)
    return replacement


# -- the third person: the shared twin telling others about the owner --------------------------


@dataclass(frozen=True)
class _Forms:
    subject: str
    object: str
    possessive: str  # before a noun: "her dog"
    absolute: str  # on its own: "the dog is hers"
    reflexive: str
    plural: bool  # "they" takes plural verbs


_PRONOUN_FORMS = {
    Pronouns.SHE: _Forms("she", "her", "her", "hers", "herself", False),
    Pronouns.HE: _Forms("he", "him", "his", "his", "himself", False),
    Pronouns.THEY: _Forms("they", "them", "their", "theirs", "themselves", True),
}
# Words that may stand between a subject and its verb without changing it.
_ADVERBS = word_set(
    "also always actually almost already basically certainly clearly definitely each even"
    " ever finally first generally hardly honestly just kind literally mainly mostly never"
    " normally now obviously occasionally often only personally probably rarely really"
    " seldom sometimes still sort then totally truly typically usually"
)
# Before a subject these make a question, whose verb is in its base form ("does she climb").
_AUXILIARIES = word_set(
    "do does did don't doesn't didn't can could will would shall should may might must"
    " can't couldn't won't wouldn't shouldn't mustn't am is are was were isn't aren't"
    " wasn't weren't have has had haven't hasn't hadn't"
)
_LY_VERBS = word_set("ally apply bully comply fly imply multiply rally rely reply supply tally")
_MODALS = word_set("can could will would shall should may might must ought")
_BEEN_OR_PARTICIPLE = word_set("been got gotten gone done seen had")
# Verb forms that change with the subject, after it ("I am") or before it ("am I"):
# (singular, plural "they").
_AGREEING = {
    "am": ("is", "are"),
    "was": ("was", "were"),
    "wasn't": ("wasn't", "weren't"),
    "have": ("has", "have"),
    "haven't": ("hasn't", "haven't"),
    "do": ("does", "do"),
    "don't": ("doesn't", "don't"),
}
_CONTRACTED = re.compile(r"^[Ii](['’])(m|ve|ll|d)$")
_TOKEN = re.compile(r"\b[Ii]['’](?:m|ve|ll|d)\b|[\w'’-]+|[^\w\s]|\s+")
_OWNER_WORDS = word_set("me my mine myself")
_ME_WORDS = word_set("i i'm i've i'll i'd me my mine myself")


def to_third_person(text: str, name: str, pronouns: Pronouns, *, named: bool = False) -> str:
    """`text` (the owner speaking) told about the owner: the first mention is `name`, the
    next ones `pronouns` ("I work at the lab; my bike…" → "Iris works at the lab; her
    bike…"), with the verb after the subject agreeing ("I climb" → "she climbs", "am I" → "is
    she"; "they" keeps "they climb"). Past tenses and modals stay as they are. With `named`,
    the name was given before: every mention is a pronoun. Quotes are left alone."""
    state = _ThirdPerson(name, _PRONOUN_FORMS[pronouns], named)
    return _outside_quotes(text, state.convert)


class _ThirdPerson:
    """One conversion to the third person: it remembers whether the name was given yet."""

    def __init__(self, name: str, forms: _Forms, named: bool) -> None:
        self.name = name
        self.forms = forms
        self.named = named

    def convert(self, text: str) -> str:
        tokens = _TOKEN.findall(text)
        words = [i for i, t in enumerate(tokens) if not t.isspace()]
        out = list(tokens)
        agree: tuple[int, bool] | None = None  # a verb that must agree, and with a singular?
        # whether the owner is the subject of this sentence (and singular): "I moved … and
        # haven't looked back" → "Iris moved … and hasn't looked back"
        subject: bool | None = None
        for n, i in enumerate(words):
            token = tokens[i]
            if agree is not None and agree[0] == i:
                out[i] = _agreeing(token, agree[1])
                continue
            prefix = "".join(tokens[:i])
            before = _folded(tokens[words[n - 1]]) if n > 0 else ""
            after = tokens[words[n + 1]] if n + 1 < len(words) else ""
            if token in (".", "!", "?", ";"):
                subject = None
            if (
                subject is not None
                and before in ("and", "but", "or")
                and _folded(token) in _AGREEING
            ):
                out[i] = _agreeing(token, subject)
                continue
            contracted = _CONTRACTED.match(token)
            if contracted:
                out[i] = self._contraction(contracted.group(1), contracted.group(2), after)
                subject = not self.forms.plural or out[i].startswith(self.name)
            elif _is_subject_i(token, prefix, after, text):
                compound = before in ("and", "or", "nor") and _joined_subject(prefix)
                if before in _AGREEING:  # "am I", "do I": the auxiliary agrees
                    singular = not self.named or not self.forms.plural
                    j = words[n - 1]
                    out[j] = _agreeing(tokens[j], singular)
                out[i], singular = self._subject(compound)
                subject = None if compound else singular
                if before not in _AUXILIARIES and not compound:
                    verb = _verb_after(tokens, words, n)
                    agree = (verb, singular) if verb is not None else None
            elif token.lower() in _OWNER_WORDS:
                out[i] = self._object(token.lower())
            else:
                continue
            if _sentence_start(prefix, len(prefix)):
                out[i] = _capitalised(out[i])
        return "".join(out)

    def _object(self, word: str) -> str:
        if word == "myself":
            self.named = True
            return self.forms.reflexive
        by_name = {"me": self.name, "my": f"{self.name}'s", "mine": f"{self.name}'s"}[word]
        pronoun = {"me": self.forms.object, "my": self.forms.possessive}.get(
            word, self.forms.absolute
        )
        if self.named:
            return pronoun
        self.named = True
        return by_name

    def _subject(self, compound: bool) -> tuple[str, bool]:
        """The subject for "I", and whether its verb is singular."""
        if compound:  # "Tomás and I": the name reads better, and the verb is plural anyway
            self.named = True
            return self.name, False
        if not self.named:
            self.named = True
            return self.name, True
        return self.forms.subject, not self.forms.plural

    def _contraction(self, apostrophe: str, ending: str, after: str) -> str:
        by_name = not self.named
        subject, singular = self._subject(False)
        perfect = _folded(after) in _BEEN_OR_PARTICIPLE or base_form(after) is not None
        if by_name:  # "Iris'll" is not written: spelt out
            full = {"m": "is", "ve": "has", "ll": "will", "d": "had" if perfect else "would"}
            return f"{subject} {full[ending]}"
        if ending == "m":
            return f"{subject}{apostrophe}{'s' if singular else 're'}"
        if ending == "ve" and singular:
            # "she's been", but "she has a dog" ("she's a dog" would read as "she is")
            return f"{subject}{apostrophe}s" if perfect else f"{subject} has"
        return f"{subject}{apostrophe}{ending}"


def _folded(word: str) -> str:
    return word.lower().replace("’", "'")


def _is_subject_i(token: str, prefix: str, after: str, text: str) -> bool:
    """Whether `token` is the owner's "I" (chats often write "i"), not an initial ("Calder
    I.") or the "i" of "i.e."."""
    if token not in ("I", "i"):
        return False
    if after in (".", ","):
        rest = text[len(prefix) + 1 : len(prefix) + 3]
        if token == "i" and re.match(r"\.\w", rest):
            return False
        if token == "I" and _INITIAL.search(prefix):
            return False
    return True


def _joined_subject(prefix: str) -> bool:
    """Whether "and I" after `prefix` joins a subject ("Biscuit and I are in"), rather than a
    new clause ("I watch films and I study"): the words since the clause began are few, and
    none of them is the owner."""
    clause = re.split(r"[.!?,;:]", prefix)[-1].split()[:-1]  # without the "and"
    return 0 < len(clause) <= 4 and not any(_folded(w) in _ME_WORDS for w in clause)


def _verb_after(tokens: list[str], words: list[int], n: int) -> int | None:
    """The position of the present-tense verb of the subject at `words[n]`, past the adverbs
    between them; None when there is none to change (a past tense, a modal, no verb)."""
    for m in range(n + 1, min(n + 4, len(words))):
        word = tokens[words[m]]
        folded = _folded(word)
        if folded in _ADVERBS or (
            folded.endswith("ly") and folded.isalpha() and folded not in _LY_VERBS
        ):
            continue
        if folded in _AGREEING:
            return words[m]
        present = (
            word.isalpha()
            and word.islower()
            and folded not in _MODALS
            and base_form(folded) is None
            and not folded.endswith("ing")
        )
        return words[m] if present else None
    return None


def _agreeing(verb: str, singular: bool) -> str:
    """`verb` (present tense, as after "I") as it is after a singular or a plural subject."""
    folded = _folded(verb)
    if folded in _AGREEING:
        form = _AGREEING[folded][0 if singular else 1]
        form = form.replace("'", "’") if "’" in verb else form
        return _capitalised(form) if verb[:1].isupper() else form
    return third_person_singular(verb) if singular else verb


def lower_first(text: str, names: frozenset[str] = frozenset()) -> str:
    """`text` to continue a sentence ("…says she ran"): its first letter in lower case, unless
    it opens on "I", one of `names` or an abbreviation."""
    first = re.split(r"[\s'’,.!?:;]", text, maxsplit=1)[0]
    if first == "I" or first in names or (first.isupper() and len(first) > 1):
        return text
    return text[:1].lower() + text[1:]


# -- the owner's questions as others ask them --------------------------------------------------


class QuestionForm(StrEnum):
    """How a friend refers to the owner in a question."""

    YOU = "you"  # "Where do you work?"
    NAME = "name"  # "Where does Iris work?"
    PRONOUN = "pronoun"  # "Where does she work?"


# How often a friend's question takes each form (the rest: "you").
NAME_SHARE = 0.35
PRONOUN_SHARE = 0.15
# "Tell me…", "Remind me…": the "me" of a request is whoever asks, not the owner.
_ASKER_IMPERATIVE = re.compile(r"^(?:Tell|Remind|Fill|Give|Show) me\b")


@dataclass(frozen=True)
class Voice:
    """Whom the twin talks to (`audience`), and how it names the owner to others."""

    audience: AudienceKind
    name: str
    pronouns: Pronouns = Pronouns.THEY

    @property
    def to_owner(self) -> bool:
        return self.audience == AudienceKind.OWNER

    def say(self, owner_text: str, *, named: bool = False) -> str:
        """What the owner wrote, as the twin says it: to the owner in the second person, to
        anyone else about the owner in the third (`named`: the name was given already)."""
        if self.to_owner:
            return to_second_person(owner_text)
        return to_third_person(owner_text, self.name, self.pronouns, named=named)

    def form(self, rng: random.Random) -> QuestionForm:
        """A seeded choice of how a friend refers to the owner (the owner says "I")."""
        if self.to_owner:
            return QuestionForm.YOU
        draw = rng.random()
        if draw < NAME_SHARE:
            return QuestionForm.NAME
        if draw < NAME_SHARE + PRONOUN_SHARE:
            return QuestionForm.PRONOUN
        return QuestionForm.YOU

    def ask(self, owner_question: str, form: QuestionForm) -> str:
        """A question written as the owner would ask it ("When did I…?"), as the audience
        asks it: the owner unchanged, anyone else in `form` ("When did you…?", "When did Iris
        …?", "When did she…?")."""
        if self.to_owner:
            return owner_question
        lead = _ASKER_IMPERATIVE.match(owner_question)
        cut = lead.end() if lead else 0
        head, rest = owner_question[:cut], owner_question[cut:]
        if form == QuestionForm.YOU:
            return head + to_second_person(rest)
        named = form == QuestionForm.PRONOUN
        return head + to_third_person(rest, self.name, self.pronouns, named=named)

    def owners(self) -> str:
        """The owner's, before a noun: "your" to the owner, "Iris's" to anyone else."""
        return "your" if self.to_owner else f"{self.name}'s"

    def source(self, memory: Memory) -> str:
        """A memory as a sentence names it: "your note of 16 March 2026", "Iris's message of
        …", "Tomás's message of …"."""
        what = "message" if memory.kind == Kind.CHAT else "note"
        author = (memory.author or "someone").split()[0]
        whose = self.owners() if memory.is_owner else f"{author}'s"
        when = f" of {spoken_date(memory.timestamp)}" if memory.timestamp else ""
        return f"{whose} {what}{when}"


def to_first_person(message: str) -> str | None:
    """A message someone wrote *to* the owner ("when do you land?"), as the owner would ask it
    ("when do I land?"). None when the writer also speaks of themselves ("can I come?"): their
    "I" and the owner's would be confused."""
    if _ASKER_SELF.search(message):
        return None
    out = message
    for pattern, replacement in _SECOND:
        out = re.sub(pattern, lambda m, r=replacement: _keep_case(m, r), out, flags=re.I)
    return _YOU.sub(_you, out)


# After these words "you" is a subject ("do you land" → "do I land"); elsewhere an object.
_SUBJECT_CONTEXT = word_set(
    "do did does can could will would should have has had when where what why how and if"
    " that so but are were or"
)
_SECOND: tuple[tuple[str, str], ...] = (
    (r"\b[Aa]re you\b", "am I"),
    (r"\b[Ww]ere you\b", "was I"),
    (r"\byou are\b", "I am"),
    (r"\byou were\b", "I was"),
    (r"\byou['’]re\b", "I'm"),
    (r"\byou['’]ve\b", "I've"),
    (r"\byou['’]ll\b", "I'll"),
    (r"\byou['’]d\b", "I'd"),
    (r"\byourself\b", "myself"),
    (r"\byours\b", "mine"),
    (r"\byour\b", "my"),
)
_YOU = re.compile(r"\b[Yy]ou\b")
_ASKER_SELF = re.compile(r"\b(?:I|I['’]m|I['’]ve|I['’]ll|I['’]d|me|my|mine|myself)\b")


def _you(match: re.Match[str]) -> str:
    before = re.findall(r"[\w']+", match.string[: match.start()].lower())
    subject = not before or before[-1] in _SUBJECT_CONTEXT
    return "I" if subject else _keep_case(match, "me")


def _keep_case(match: re.Match[str], replacement: str) -> str:
    if match.group(0)[:1].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement
