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

from memory.retrieve import STOPWORDS
from training.synthesize.passages import word_set

# Irregular past tenses (and a few participles) → the base form.
IRREGULAR_PAST = {
    "ate": "eat",
    "awoke": "awake",
    "became": "become",
    "began": "begin",
    "bent": "bend",
    "bit": "bite",
    "bled": "bleed",
    "blew": "blow",
    "bought": "buy",
    "bred": "breed",
    "broke": "break",
    "brought": "bring",
    "built": "build",
    "burnt": "burn",
    "came": "come",
    "caught": "catch",
    "chose": "choose",
    "clung": "cling",
    "cut": "cut",
    "dealt": "deal",
    "did": "do",
    "drank": "drink",
    "dreamt": "dream",
    "drew": "draw",
    "drove": "drive",
    "dug": "dig",
    "fed": "feed",
    "fell": "fall",
    "felt": "feel",
    "fled": "flee",
    "flew": "fly",
    "flung": "fling",
    "forgave": "forgive",
    "forgot": "forget",
    "found": "find",
    "froze": "freeze",
    "gave": "give",
    "got": "get",
    "grew": "grow",
    "had": "have",
    "heard": "hear",
    "held": "hold",
    "hid": "hide",
    "hit": "hit",
    "hung": "hang",
    "hurt": "hurt",
    "kept": "keep",
    "knelt": "kneel",
    "knew": "know",
    "laid": "lay",
    "lay": "lie",
    "leapt": "leap",
    "learnt": "learn",
    "led": "lead",
    "left": "leave",
    "lent": "lend",
    "let": "let",
    "lit": "light",
    "lost": "lose",
    "made": "make",
    "meant": "mean",
    "met": "meet",
    "overslept": "oversleep",
    "paid": "pay",
    "put": "put",
    "quit": "quit",
    "ran": "run",
    "rang": "ring",
    "read": "read",
    "rode": "ride",
    "rose": "rise",
    "said": "say",
    "sang": "sing",
    "sank": "sink",
    "sat": "sit",
    "saw": "see",
    "sent": "send",
    "set": "set",
    "shone": "shine",
    "shook": "shake",
    "shot": "shoot",
    "shut": "shut",
    "slept": "sleep",
    "slid": "slide",
    "sold": "sell",
    "sped": "speed",
    "spent": "spend",
    "spilt": "spill",
    "split": "split",
    "spoke": "speak",
    "sprang": "spring",
    "spun": "spin",
    "stank": "stink",
    "stole": "steal",
    "stood": "stand",
    "struck": "strike",
    "stuck": "stick",
    "stung": "sting",
    "swam": "swim",
    "swept": "sweep",
    "swore": "swear",
    "swung": "swing",
    "taught": "teach",
    "thought": "think",
    "threw": "throw",
    "told": "tell",
    "took": "take",
    "tore": "tear",
    "understood": "understand",
    "went": "go",
    "wept": "weep",
    "woke": "wake",
    "won": "win",
    "wore": "wear",
    "wound": "wind",
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
# Present-tense verbs that end in "ed" like a past tense (need → not "ne").
_ED_PRESENT = word_set(
    "bleed breed embed exceed feed heed need proceed seed shed speed succeed wed weed"
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
    if not word.endswith("ed") or len(word) < 4 or word in _ED_PRESENT:
        return None
    stem = word[:-2]
    if stem + "e" in _E_BASES:
        return stem + "e"
    if stem.endswith("i"):
        return stem[:-1] + "y"
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsfz":
        return stem[:-1]
    return stem


_THIRD_PERSON_IRREGULAR = {"be": "is", "am": "is", "have": "has", "do": "does", "go": "goes"}


def third_person_singular(verb: str) -> str:
    """The present tense after "she", "he" or a name: "work" → "works", "watch" → "watches",
    "study" → "studies", "have" → "has"."""
    if verb in _THIRD_PERSON_IRREGULAR:
        return _THIRD_PERSON_IRREGULAR[verb]
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if len(verb) > 1 and verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


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
                if len(subject) == 1 and not text.endswith("s"):
                    text = f"the {text}"  # a note's "Concert is on…": "the concert"
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
    if not verb[:1].islower():
        return None  # a capitalised word after a subject is a name ("Helena Alves"), not a verb
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


# Words that never sit inside a noun phrase (beyond retrieval's stopwords).
_NOT_MODIFIERS = (
    _MODALS
    | _NOT_VERBS
    | word_set(
        "am is are was were be been being have has had do does did not no nor yet just some"
        " any each every all both few many much more most other another such own same"
        " after before over under between through during without within across behind"
        " beyond near around against along among since until till upon onto off out down"
        " via per here there now underneath inside outside above below ahead away back"
        " together apart again"
    )
)
_ADJECTIVE_ENDINGS = ("ive", "ous", "ful", "less", "ish", "able", "ible", "est")
_NP_TOKEN = re.compile(r"[\w'’-]+|[^\w\s]")


def noun_phrase(text: str, word: str, determiners: frozenset[str]) -> str | None:
    """The noun phrase of `text` that `word` is the noun of: one of `determiners`, at most one
    describing word, `word`, and the noun `word` may describe in turn ("the crater lake",
    "my octopus drawing"). None when `word` stands in no such phrase, as a verb or an adjective
    does ("are you alive", "it's unreal"): a question about it would not make sense."""
    tokens = _NP_TOKEN.findall(text)
    for i, token in enumerate(tokens):
        if token != word or not _modifier(token):
            continue
        for j in (i - 1, i - 2):
            if j < 0 or not all(_modifier(t) for t in tokens[j + 1 : i]):
                break
            if tokens[j].lower() in determiners:
                end = i + 1
                # "the crater lake": `word` describes the noun after it. A plural "s" after a
                # noun may be a verb ("the dog needs"), after an adjective it is the noun
                # ("the disruptive patterns"); an adjective with no noun is no thing.
                describes = word.endswith(_ADJECTIVE_ENDINGS)
                following = tokens[end] if end < len(tokens) else ""
                if (
                    _modifier(following)
                    and not following.endswith("ing")
                    and (describes or not following.endswith("s"))
                ):
                    end += 1
                elif describes:
                    break
                return " ".join([tokens[j].lower(), *tokens[j + 1 : end]])
    return None


def _modifier(word: str) -> bool:
    """Whether `word` can be part of a noun phrase: a lower-case word, no verb in the past, no
    adverb, no function word."""
    return (
        bool(word)
        and bool(re.fullmatch(r"[^\W\d_]+(?:-[^\W\d_]+)*", word))
        and word.islower()
        and word not in STOPWORDS
        and word not in _NOT_MODIFIERS
        and not word.endswith("ly")
        and base_form(word) is None
    )
