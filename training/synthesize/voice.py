"""Whose voice a sample speaks in.

The owner's memories are written in the first person ("I ran the half marathon"). The owner's
twin talks *to* the owner, so its replies say "you"; the shared twin talks *as* the owner to a
friend, so its replies keep "I" and the friend's questions say "you". `to_second_person` is the
one conversion both need: the owner's first person turned into the second person.

"We", "us" and "our" are left alone on purpose: they include other people ("we're 2nd in the
league"), and "you" would lose them.
"""

from __future__ import annotations

import re

from training.synthesize.extract import word_set
from twin.privacy import AudienceKind

# Contractions and verb forms that change with the subject, longest first.
_PHRASES: tuple[tuple[str, str], ...] = (
    (r"\bI am\b", "you are"),
    (r"\bI was\b", "you were"),
    (r"\b[Aa]m I\b", "are you"),
    (r"\b[Ww]as I\b", "were you"),
    (r"\bI['’]m\b", "you're"),
    (r"\bI['’]ve\b", "you've"),
    (r"\bI['’]d\b", "you'd"),
    (r"\bI['’]ll\b", "you'll"),
)
_WORDS = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
}
_WORD = re.compile(r"\b(I|[Mm]e|[Mm]y|[Mm]ine|[Mm]yself)\b")
# "Calder I., Nair P." is an initial, not the pronoun.
_INITIAL = re.compile(r"[A-Z][a-z]+\s$")


def to_second_person(text: str) -> str:
    """`text` (the owner speaking) with the owner addressed instead: "I ran my race" becomes
    "you ran your race". A word that opens a sentence stays capitalised."""
    out = text
    for pattern, replacement in _PHRASES:
        out = re.sub(pattern, lambda m, r=replacement: _cased(m, r), out)
    return _WORD.sub(_swap, out)


def _swap(match: re.Match[str]) -> str:
    word = match.group(1)
    after = match.string[match.end() : match.end() + 1]
    if word == "I" and after in ".," and _INITIAL.search(match.string[: match.start()]):
        return word
    return _cased(match, _WORDS[word.lower()])


def _cased(match: re.Match[str], replacement: str) -> str:
    """`replacement` capitalised when it starts a sentence (the replaced word's position)."""
    text = match.string
    before = text[: match.start()].rstrip()
    if not before or before[-1] in ".!?" or text[: match.start()].endswith(("\n", "- ")):
        return replacement[0].upper() + replacement[1:]
    return replacement


def in_voice(owner_text: str, audience: AudienceKind) -> str:
    """What the owner wrote, as the twin says it to `audience`: to the owner in the second
    person, to anyone else in the owner's own first person."""
    return to_second_person(owner_text) if audience == AudienceKind.OWNER else owner_text


# "Tell me…", "Remind me…": the "me" of a request is whoever asks, not the owner.
_ASKER_IMPERATIVE = re.compile(r"^(?:Tell|Remind|Fill|Give|Show) me\b")


def asked_by(owner_question: str, audience: AudienceKind) -> str:
    """A question written as the owner would ask it ("When did I…?"), as `audience` asks it:
    the owner unchanged, anyone else about the owner ("When did you…?")."""
    if audience == AudienceKind.OWNER:
        return owner_question
    lead = _ASKER_IMPERATIVE.match(owner_question)
    cut = lead.end() if lead else 0
    return owner_question[:cut] + to_second_person(owner_question[cut:])


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


def _you(match: re.Match[str]) -> str:
    before = re.findall(r"[\w']+", match.string[: match.start()].lower())
    subject = not before or before[-1] in _SUBJECT_CONTEXT
    return "I" if subject else _keep_case(match, "me")


def _keep_case(match: re.Match[str], replacement: str) -> str:
    if match.group(0)[:1].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement
