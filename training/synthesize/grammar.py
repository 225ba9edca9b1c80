"""Just enough English grammar to turn a memory's clause into a question.

`analyse` finds the subject and the verb of a short clause ("the paper got accepted",
"Signed up in a moment of weakness" with the owner as the unspoken subject, "I play in the
orchestra") and `Clause` then gives it in the inverted form a question needs ("did the paper
get accepted", "did I sign up…", "do I play…"). Clauses it cannot read return None: the
synthesizer then asks a topic question instead of a wrong one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from training.synthesize.extract import word_set

# Irregular past tenses (and a few participles) → the base form.
IRREGULAR_PAST = {
    "ate": "eat",
    "became": "become",
    "began": "begin",
    "bought": "buy",
    "brought": "bring",
    "built": "build",
    "came": "come",
    "caught": "catch",
    "chose": "choose",
    "cut": "cut",
    "did": "do",
    "drew": "draw",
    "drank": "drink",
    "drove": "drive",
    "fell": "fall",
    "felt": "feel",
    "flew": "fly",
    "forgot": "forget",
    "found": "find",
    "gave": "give",
    "got": "get",
    "grew": "grow",
    "had": "have",
    "heard": "hear",
    "held": "hold",
    "kept": "keep",
    "knew": "know",
    "left": "leave",
    "lent": "lend",
    "let": "let",
    "lost": "lose",
    "made": "make",
    "meant": "mean",
    "met": "meet",
    "paid": "pay",
    "put": "put",
    "ran": "run",
    "rang": "ring",
    "read": "read",
    "rode": "ride",
    "said": "say",
    "sang": "sing",
    "sat": "sit",
    "saw": "see",
    "sent": "send",
    "set": "set",
    "shot": "shoot",
    "slept": "sleep",
    "sold": "sell",
    "spent": "spend",
    "spoke": "speak",
    "stood": "stand",
    "stole": "steal",
    "swam": "swim",
    "taught": "teach",
    "thought": "think",
    "threw": "throw",
    "told": "tell",
    "took": "take",
    "understood": "understand",
    "went": "go",
    "woke": "wake",
    "won": "win",
    "wore": "wear",
    "wrote": "write",
}
# Regular verbs whose base ends in "e" (moved → move); the rest lose "ed" (signed → sign).
_E_BASES = word_set(
    "achieve arrive bake believe bike blame breathe change close create cycle dance"
    " decide describe dine divide dye explore fake file fine hate hike hope ignore imagine"
    " improve include invite judge like live love manage move name note notice organise"
    " organize paste phone place practise prepare promise race raise receive recognise"
    " release remove rescue retire save scare score serve settle share shave skate smile"
    " solve squeeze stare store struggle suppose surprise taste tease tire trade type use"
    " vote wave whine wipe"
)
_BE = {"am": "present", "is": "present", "are": "present", "was": "past", "were": "past"}
_MODALS = frozenset(["will", "would", "can", "could", "should", "might", "must", "shall"])
_HAVE = frozenset(("have", "has", "had"))
_NOT_VERBS = word_set(
    "also always never still really just only even actually both all too very so not"
)
_PRONOUN_SUBJECTS = {"I": "I", "We": "we", "we": "we", "i": "I"}
_CONTRACTIONS = {
    "i'm": ("I", "am"),
    "i've": ("I", "have"),
    "i'll": ("I", "will"),
    "i'd": ("I", "would"),
    "we're": ("we", "are"),
    "we've": ("we", "have"),
    "we'll": ("we", "will"),
}
_NOT_SUBJECTS = word_set(
    "it this that there here what who which how why when where he she they you yes no"
)
_DETERMINERS = frozenset(["the", "my", "our", "his", "her", "their", "this", "that"])
# Words that say when relative to the message, not useful in a question asked later.
RELATIVE_TIME = re.compile(
    r"\b(?:today|tonight|this (?:morning|afternoon|evening|week)|yesterday|last night"
    r"|already|just|now|finally)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\d+(?:[:.,]\d+)+|[\w'’-]+|[^\w\s]")


@dataclass(frozen=True)
class Clause:
    """A clause read as subject, verb and the rest."""

    subject: str
    verb: str
    base: str
    rest: str
    form: str  # "past", "present", "be-past", "be-present", "perfect", "modal"

    def inverted(self) -> str:
        """The clause as a question word continues it: "did I sign up in…"."""
        rest = f" {self.rest}" if self.rest else ""
        if self.form == "past":
            return f"did {self.subject} {self.base}{rest}"
        if self.form == "present":
            aux = "do" if self.subject in ("I", "we", "you", "they") else "does"
            return f"{aux} {self.subject} {self.base}{rest}"
        return f"{self.verb} {self.subject}{rest}"

    def declarative(self) -> str:
        """The clause as a statement: "I signed up in…"."""
        rest = f" {self.rest}" if self.rest else ""
        return f"{self.subject} {self.verb}{rest}"

    def predicate(self) -> str:
        """The clause without its subject, for a question about the subject: "phoned…"."""
        rest = f" {self.rest}" if self.rest else ""
        return f"{self.verb}{rest}"


def base_form(verb: str) -> str | None:
    """The base form of a past-tense verb, or None when `verb` does not look like one."""
    word = verb.lower()
    if word in IRREGULAR_PAST:
        return IRREGULAR_PAST[word]
    if not word.endswith("ed") or len(word) < 4:
        return None
    stem = word[:-2]
    if stem + "e" in _E_BASES:
        return stem + "e"
    if stem.endswith("i"):
        return stem[:-1] + "y"
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsfz":
        return stem[:-1]
    return stem


def _present_base(verb: str) -> str | None:
    """The base of a third-person present verb ("lives" → "live"), or None."""
    word = verb.lower()
    if not word.endswith("s") or word.endswith("ss") or len(word) < 4:
        return None
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    return word[:-1]


def analyse(text: str, *, owner_speaks: bool, names: frozenset[str]) -> Clause | None:
    """Subject, verb and rest of a short clause, or None when it does not read as one.

    `owner_speaks` allows the note style where the owner leaves out "I" ("Signed up on…");
    `names` are the proper names a subject may be made of.
    """
    words = _WORD.findall(text.strip())
    if len(words) < 2:
        return None
    first = words[0]
    contraction = _CONTRACTIONS.get(first.lower().replace("’", "'"))
    if contraction is not None:
        subject, verb = contraction
        return _after_verb(subject, verb, words[1:])
    if first in _PRONOUN_SUBJECTS:
        return _after_verb(_PRONOUN_SUBJECTS[first], words[1], words[2:])
    if owner_speaks and first[:1].isupper() and base_form(first) is not None:
        return _after_verb("I", first.lower(), words[1:])
    for end in range(1, min(len(words), 6)):
        subject_words = words[:end]
        if _is_subject(subject_words, names):
            clause = _after_verb(_subject_text(subject_words), words[end], words[end + 1 :])
            if clause is not None:
                return clause
    return _bare_subject(words)


def _bare_subject(words: list[str]) -> Clause | None:
    """A sentence opening on a bare noun ("Concert is on Saturday"): accepted only before a
    form of "be", a modal or "has"/"had", where the reading is safe."""
    for end in range(1, min(len(words) - 1, 4)):
        verb = words[end].lower()
        if verb in _BE or verb in _MODALS or verb in ("has", "had"):
            subject = words[:end]
            if not all(w.isalpha() for w in subject) or subject[0].lower() in _NOT_SUBJECTS:
                return None
            text = " ".join(subject)
            if subject[0][1:].islower():  # a capital that only opens the sentence
                text = text[0].lower() + text[1:]
            return _after_verb(text, verb, words[end + 1 :])
    return None


def _is_subject(words: list[str], names: frozenset[str]) -> bool:
    if not all(re.match(r"[\w'’-]+$", w) for w in words):
        return False
    if all(w in names for w in words):
        return True
    return words[0].lower() in _DETERMINERS and len(words) >= 2 and words[1][:1].islower()


def _subject_text(words: list[str]) -> str:
    text = " ".join(words)
    return text[0].lower() + text[1:] if words[0].lower() in _DETERMINERS else text


def _after_verb(subject: str, verb: str, rest_words: list[str]) -> Clause | None:
    """The clause once subject and verb are known; None when `verb` is not a verb."""
    rest = _join(rest_words)
    word = verb.lower()
    if word in _BE:
        return Clause(subject, word, "be", rest, f"be-{_BE[word]}")
    if word in _MODALS:
        return Clause(subject, word, word, rest, "modal") if rest else None
    if word in _HAVE and rest_words and base_form(rest_words[0]) is not None:
        return Clause(subject, word, "have", rest, "perfect")
    base = base_form(word)
    if base is not None:
        return Clause(subject, word, base, rest, "past")
    if (
        subject in ("I", "we")
        and word.isalpha()
        and word.islower()
        and len(word) > 2
        and not word.endswith("ly")
        and word not in _NOT_VERBS
    ):
        return Clause(subject, word, word, rest, "present") if rest else None
    present = _present_base(word)
    if present is not None and subject not in ("I", "we"):
        return Clause(subject, word, present, rest, "present")
    return None


def _join(words: list[str]) -> str:
    text = " ".join(words)
    text = re.sub(r"\s+([,.;:!?)%])", r"\1", text)
    text = re.sub(r"([(])\s+", r"\1", text)
    return re.sub(r"\s*(['’])\s*(s|t|re|ve|ll|d|m)\b", r"\1\2", text).strip()
