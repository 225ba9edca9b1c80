"""Whether a model's answer says something memory supports, before anyone reads it.

A small model that cannot find the answer in the memories it is shown tends to echo the
question ("Who teaches me Portuguese?" → "You teach me Portuguese.") or invent a plausible
detail ("the 25th bridge", "called Clem"). Both read as answers and both are wrong. An answer
is grounded when it adds at least one word from the memories it was shown that the question
did not have, and no fact-like word (a number, a name: capitalised after the first word) that
neither the question nor those memories (nor the people named in the prompt) contain. Plain
words are not held to that ("ran" for "run"); words are compared by their first letters so
that inflections match ("runs"/"running").

An answer must also be of the kind its question asks for, where the wording says so plainly: a
"when" question answered with no date or time ("The paper got accepted.") and a "how many"
question answered with no number are not answers, however grounded their words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from memory.query import AnswerKind, answer_kind
from memory.retrieve import asked_words, holds_answer
from memory.timeref import read_time

# Words that carry no fact: an answer is not judged by them.
FUNCTION_WORDS = frozenset(
    re.findall(
        r"\w+",
        """
    a an the i you your yours my me mine we us our he him his she her hers they them their it
    its is are was were be been being am to of in on at for with and or but nor do did does
    done what who whom whose when where which how why that this these those there here have has
    had not no yes so as by from about into onto than then just can could would will shall
    should may might must also too very really still yet again ever once all any some each
    every both more most much many such own same other up down out off over under like get got
    one im youre dont doesnt didnt isnt wasnt arent ive youve hes shes theyre thats its lets
    whats whos wheres whens hows
""",
    )
)
# Words compared by this many first letters (inflections share them); shorter ones whole.
STEM = 4
_WORD = re.compile(r"[^\W_]+(?:[:.][0-9]+)*", re.UNICODE)
# An answer that repeats this many words in a row of its instructions is reciting them (an
# introduction, "I'm the AI twin of Iris Calder", repeats six).
ECHO_RUN = 8


@dataclass(frozen=True)
class Grounding:
    """What an answer adds to its question, and which of those words memory does not hold."""

    added: tuple[str, ...]
    unsupported: tuple[str, ...]

    @property
    def holds(self) -> bool:
        return bool(self.added) and not self.unsupported


def grounding(
    answer: str, question: str, sources: Iterable[str], people: Iterable[str] = ()
) -> Grounding:
    """Check `answer` to `question` against `sources` (the memories shown, with their dates
    and who wrote them). `people` are the names the prompt gives (the owner's, the asker's):
    an answer may say them, but saying them adds nothing ("Iris has no information on that")."""
    asked = {_stem(w) for text in (question, *people) for w in content_words(text)}
    known = {_stem(w) for source in sources for w in content_words(source)}
    added: list[str] = []
    unsupported: list[str] = []
    for word, fact_like in _answer_words(answer):
        stem = _stem(word)
        if stem in asked:
            continue
        if stem in known:
            added.append(word)
        elif fact_like:
            unsupported.append(word)
    return Grounding(tuple(added), tuple(unsupported))


def gives_what_is_asked(answer: str, question: str, now: datetime) -> bool:
    """Whether `answer` is of the kind `question` asks for when its wording says: a date or a
    time for "when…" / "what day…", a number (not one the question says) for "how many…",
    "what time…", "how often…" (so "every Tuesday" gives way to memory there). Any answer
    holds for a question that asks for neither: names and places are said too many ways
    ("your sister", "at home") to be held to one."""
    kind = answer_kind(question, read_time(question, now).asks_when)
    if kind not in (AnswerKind.DATE, AnswerKind.NUMBER):
        return True
    return holds_answer(kind, answer, asked_words(question), now)


def echoes(answer: str, instructions: str, run: int = ECHO_RUN) -> bool:
    """Whether `answer` repeats `run` or more words in a row of `instructions` (the system
    prompt it was given). A small model that has lost its place recites what it was told
    ("You're the AI twin of Iris Calder, talking with Iris Calder…"): never a reply."""
    said = [w.lower() for w in _WORD.findall(_plain(answer))]
    told = [w.lower() for w in _WORD.findall(_plain(instructions))]
    runs = {tuple(told[i : i + run]) for i in range(len(told) - run + 1)}
    return any(tuple(said[i : i + run]) in runs for i in range(len(said) - run + 1))


def content_words(text: str) -> list[str]:
    """The words of `text` that can carry a fact: lower-cased, apostrophes dropped, no
    function words."""
    words = (w.lower() for w in _WORD.findall(_plain(text)))
    return [w for w in words if w not in FUNCTION_WORDS]


def _answer_words(answer: str) -> list[tuple[str, bool]]:
    """The answer's content words, each with whether it looks like a fact: a number, or a
    capitalised word that does not open a sentence."""
    text = _plain(answer)
    words = []
    for match in _WORD.finditer(text):
        word = match.group().lower()
        if word in FUNCTION_WORDS:
            continue
        before = text[: match.start()].rstrip()
        opens = not before or before[-1] in ".!?:\n"
        fact_like = any(c.isdigit() for c in word) or (match.group()[0].isupper() and not opens)
        words.append((word, fact_like))
    return words


def _plain(text: str) -> str:
    return text.replace("'", "").replace("\u2019", "")


def _stem(word: str) -> str:
    return word if word[0].isdigit() else word[:STEM]
