"""Offline fact extraction: patterns over the owner's own first-person sentences.

What it reads: only memories the owner wrote (their chat messages, notes and documents), one
sentence at a time, looking for a fixed set of first-person forms:

- "I'm a/an <role> at <Organisation>", "I work as a/an <job>", "I work at/for <Organisation>"
- "I'm a/an <role>" (only when the last word looks like a role: "scientist", "teacher")
- "I'm vegetarian/vegan/…"
- "I live in <Place>", "I moved (from <Place>) to <Place>", "I grew up in / was born in <Place>"
- "my <relation> <Name>", "<Name> is my <relation>" (family, partner, friends, pets)
- "I have a <pet>", "I'm allergic to …", "I love/adore/enjoy …", "I hate/can't stand …",
  "I'm a fan of …", "my favourite <thing> is …"
- "I've been <verb>ing …", "I'm learning/training for/building …", "I play …", "I study …"

What it cannot do, honestly: it has no coreference ("she's my sister" or "I love it" give
nothing, and a value with a pronoun in it is dropped); negation only in that "I don't live in X"
does not match "I live in"; it skips questions, sentences with a hedge before the match ("if",
"maybe", "I wish") and text in quotation marks, but not irony, jokes or reported speech; it
never looks at what other people say about the owner; and it only knows the patterns above.
Values are the words as written, cut at the end of the clause.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from memory.models import Memory
from memory.profile.records import FactDraft
from memory.profile.sentences import sentences

LIMITS = (
    "Facts were extracted offline, by matching a fixed set of first-person patterns in your own "
    'messages and notes ("I live in …", "my sister …", "I love …"). It has no coreference '
    '("she\'s my sister" gives nothing), handles negation only in that "I don\'t live in X" is '
    "not matched, skips questions and hedged or quoted sentences but not jokes or irony, and "
    "ignores what others say about you. Configure [llm.synthesizer] for fuller extraction."
)

_UPPER = "A-ZÀ-ÖØ-Þ"
_NAME_WORD = rf"[{_UPPER}][\w'’-]*"
# A proper noun phrase: capitalised words, joined by the small words place and organisation
# names use ("University of St Andrews", "Oceanário de Lisboa").
_PROPER = (
    rf"(?:the\s+)?{_NAME_WORD}(?:\s+(?:(?:of|de|da|do|dos|das|del|di|du|la|le|van|von)\s+)?"
    rf"{_NAME_WORD})*"
)
_NAME = rf"{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}}"
_CLAUSE = r"(?P<rest>[^,;:.!?()\[\]\"“”]+)"
# The rest of a clause that may be a comma-separated list.
_LIST = r"(?P<rest>[^;:.!?()\[\]\"“”]+)"
_I_AM = r"\bI(?:['’]m| am)"

_RELATIONS: dict[str, str] = {
    **dict.fromkeys(["sister", "brother", "sibling", "twin"], "sibling"),
    **dict.fromkeys(["mum", "mom", "mam", "mother", "dad", "father"], "parent"),
    **dict.fromkeys(["son", "daughter"], "child"),
    **dict.fromkeys(
        ["grandma", "grandmother", "granny", "gran", "grandad", "grandfather", "grandpa"],
        "grandparent",
    ),
    **dict.fromkeys(["aunt", "uncle", "cousin", "niece", "nephew"], "family"),
    **dict.fromkeys(
        [
            "best friend",
            "friend",
            "flatmate",
            "roommate",
            "housemate",
            "neighbour",
            "neighbor",
            "colleague",
            "boss",
            "manager",
            "tutor",
            "teacher",
            "coach",
            "climbing partner",
            "running partner",
            "bandmate",
        ],
        "relation",
    ),
}
_PARTNERS = [
    "partner",
    "husband",
    "wife",
    "boyfriend",
    "girlfriend",
    "fiancé",
    "fiancée",
    "fiance",
    "fiancee",
    "spouse",
]
_PETS = [
    "dog",
    "cat",
    "puppy",
    "kitten",
    "greyhound",
    "labrador",
    "terrier",
    "spaniel",
    "collie",
    "rabbit",
    "bunny",
    "hamster",
    "guinea pig",
    "parrot",
    "budgie",
    "tortoise",
    "turtle",
    "horse",
    "pony",
    "ferret",
]
_ADJECTIVES = r"(?:big|little|older|younger|baby|twin|wee|best|late|step|half|new|old|lovely)"


def _alternation(words: Sequence[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_REL_WORDS = _alternation([*_RELATIONS, *_PARTNERS, *_PETS])

# Heads of "I'm a/an …" that name a role or a way of being, beyond the suffix rule below.
_ROLE_TEXT = """
    nurse doctor chef cook student teacher vegan vegetarian pescatarian parent mum mom dad
    mother father nerd geek introvert extrovert artist scientist musician athlete medic vet
    coach pilot poet carpenter person freelancer grandmother grandfather midwife architect
    dentist surgeon lawyer journalist pharmacist paramedic
"""
_ROLE_WORDS = frozenset(_ROLE_TEXT.split())
_ROLE_SUFFIX = re.compile(r"(?:ist|er|or|ian|ant|ent|eer|ee|ogist)$")
# Words with a role-like ending that describe a mood or a joke, not a role.
_NOT_ROLE_TEXT = "wreck mess disaster monster sucker number bother winner loser corner member"
_NOT_ROLES = frozenset(_NOT_ROLE_TEXT.split())
_PRONOUN_TEXT = (
    "i me my mine myself you your yours we us our ours it its this that these those them "
    "him her his hers he she they their theirs"
)
_PRONOUNS = frozenset(_PRONOUN_TEXT.split())
_BOUNDARY = re.compile(
    r"\s+(?:because|but|so|when|where|who|whose|which|while|since|though|although|until|till|"
    r"if|unless|whereas|then|cause|cos|with|like|and then|and I|and i)\b.*$"
)
_FILLER = re.compile(
    r"\s+(?:now|these days|lately|recently|right now|tbh|too|as well|so much|a lot|anyway|"
    r"again|already|though|haha|lol|honestly|really|obviously|actually)$",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(?:if|unless|wish|hope|maybe|perhaps|imagine|pretend|dream|would|wouldn['’]t|"
    r"as if|not that|never said|told (?:him|her|them))\b",
    re.IGNORECASE,
)
_QUOTES = re.compile(r"[\"“”]")


def article(word: str) -> str:
    """ "a" or "an" before `word` (by its first letter; good enough for role nouns)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _clean(rest: str, max_words: int = 6) -> str | None:
    """The value in the rest of a clause: cut at the clause's end and filler words; None when
    what is left is empty, too long to be one value, or leans on a pronoun."""
    value = _BOUNDARY.sub("", rest.strip())
    previous = None
    while previous != value:
        previous = value
        value = _FILLER.sub("", value).strip()
    value = re.sub(r"[^\w)'’]+$", "", value).strip()
    words = value.split()
    if not words or len(words) > max_words:
        return None
    if any(w.casefold().strip("'’") in _PRONOUNS for w in words):
        return None
    return value


def _items(rest: str) -> list[str]:
    """The values of a list ("cats, dogs and long walks"). Past a comma it only goes on when
    the words after the last comma close a list with "and"/"or"; otherwise the comma ends the
    clause ("coriander, tastes like soap" is one value)."""
    parts = rest.split(",")
    if len(parts) > 1 and not re.search(r"\b(?:and|or)\b", parts[-1]):
        parts = parts[:1]
    values = [v for part in parts for v in re.split(r"\s+(?:and|&|or)\s+", part)]
    return [v for v in (_clean(p, max_words=5) for p in values) if v]


def _proper_at_start(rest: str) -> tuple[str, str] | None:
    """The proper noun phrase `rest` starts with: (as written, without a leading "the")."""
    match = re.match(_PROPER, rest.strip())
    if not match:
        return None
    written = match.group(0)
    return written, re.sub(r"^the\s+", "", written)


Emit = Callable[[str, str, str, str, bool], None]
"""emit(attribute, value, third_person_predicate, first_person_predicate, exclusive)"""


def _role(emit: Emit, m: re.Match[str]) -> None:
    rest = m.group("rest")
    at = re.search(r"\s+(?:at|for)\s+(?=(?:the\s+)?[" + _UPPER + "])", rest)
    if at:
        job = _clean(rest[: at.start()])
        org = _proper_at_start(rest[at.end() :])
        if job and org and job.islower():
            emit(
                "job", job, f"works as {article(job)} {job}", f"work as {article(job)} {job}", True
            )
            emit("employer", org[1], f"works at {org[0]}", f"work at {org[0]}", True)
            return
    value = _clean(rest, max_words=4)
    if not value or not value.islower():
        return
    head = value.split()[-1]
    if head in _NOT_ROLES or not (head in _ROLE_WORDS or _ROLE_SUFFIX.search(head)):
        return
    emit("identity", value, f"is {article(value)} {value}", f"am {article(value)} {value}", False)


def _work_as(emit: Emit, m: re.Match[str]) -> None:
    rest = m.group("rest")
    at = re.search(r"\s+(?:at|for)\s+", rest)
    job = _clean(rest[: at.start()] if at else rest)
    if job and job.islower():
        emit("job", job, f"works as {article(job)} {job}", f"work as {article(job)} {job}", True)
    if at and (org := _proper_at_start(rest[at.end() :])):
        emit("employer", org[1], f"works at {org[0]}", f"work at {org[0]}", True)


def _work_at(emit: Emit, m: re.Match[str]) -> None:
    if org := _proper_at_start(m.group("rest")):
        verb = m.group("prep")
        emit("employer", org[1], f"works {verb} {org[0]}", f"work {verb} {org[0]}", True)


def _diet(emit: Emit, m: re.Match[str]) -> None:
    diet = {"veggie": "vegetarian"}.get(m.group("diet").lower(), m.group("diet").lower())
    emit("diet", diet, f"is {diet}", f"am {diet}", True)


def _lives(emit: Emit, m: re.Match[str]) -> None:
    if place := _proper_at_start(m.group("rest")):
        emit("home_city", place[1], f"lives in {place[0]}", f"live in {place[0]}", True)


def _moved(emit: Emit, m: re.Match[str]) -> None:
    found = re.match(rf"(?:from\s+(?P<src>{_PROPER})\s+)?to\s+(?P<dst>{_PROPER})", m.group("rest"))
    if not found:
        return
    dst = found.group("dst")
    emit("home_city", re.sub(r"^the\s+", "", dst), f"lives in {dst}", f"live in {dst}", True)
    if src := found.group("src"):
        value = re.sub(r"^the\s+", "", src)
        emit("lived_in", value, f"used to live in {src}", f"used to live in {src}", False)


def _origin(attribute: str, verb: str) -> Callable[[Emit, re.Match[str]], None]:
    def handle(emit: Emit, m: re.Match[str]) -> None:
        if place := _proper_at_start(m.group("rest")):
            emit(attribute, place[1], f"{verb} {place[0]}", f"{verb} {place[0]}", True)

    return handle


def _relation(emit: Emit, m: re.Match[str]) -> None:
    rel = m.group("rel").lower()
    name = m.group("name")
    if name.split()[0].casefold() in _PRONOUNS:
        return
    adjective = f"{m.group('adj').lower()} " if m.group("adj") else ""
    if rel in _PETS:
        emit(
            "pet",
            name,
            f"has {article(rel)} {rel} called {name}",
            f"have {article(rel)} {rel} called {name}",
            False,
        )
    elif rel in _PARTNERS:
        emit("partner", name, f"'s {rel} is {name}", f"My {rel} is {name}", True)
    else:
        key = f"{_RELATIONS[rel]}:{rel}"
        emit(key, name, f"'s {adjective}{rel} is {name}", f"My {adjective}{rel} is {name}", False)


def _pet(emit: Emit, m: re.Match[str]) -> None:
    if re.search(r"\b(?:who|that|which|whose|with|friend|sister|brother)\b", m.group("between")):
        return  # "I have a friend who has a dog": the dog is not the owner's
    pet = m.group("pet").lower()
    adjective = f"{m.group('adj').lower()} " if m.group("adj") else ""
    value = f"{adjective}{pet}"
    emit("pet", value, f"has {article(value)} {value}", f"have {article(value)} {value}", False)


def _list(attribute: str, third: str, first: str) -> Callable[[Emit, re.Match[str]], None]:
    def handle(emit: Emit, m: re.Match[str]) -> None:
        verb = m.groupdict().get("verb")
        for item in _items(m.group("rest")):
            t = third.format(verb=_third_person(verb) if verb else "", value=item)
            f = first.format(verb=verb.lower() if verb else "", value=item)
            emit(attribute, item, t, f, False)

    return handle


def _third_person(verb: str) -> str:
    verb = verb.lower().replace("’", "'")
    if verb in {"can't stand", "cannot stand"}:
        return "can't stand"
    return verb + ("es" if verb.endswith(("sh", "ch", "s")) else "s")


def _doing(attribute: str, third: str, first: str) -> Callable[[Emit, re.Match[str]], None]:
    def handle(emit: Emit, m: re.Match[str]) -> None:
        verb = m.group("verb").lower()
        rest = (m.group("rest") or "").strip()
        what = _clean(rest) if rest else ""
        if what is None:
            return
        value = f"{verb} {what}".strip()
        emit(attribute, value, third.format(value=value), first.format(value=value), False)

    return handle


def _doing_plain(attribute: str, third: str, first: str) -> Callable[[Emit, re.Match[str]], None]:
    def handle(emit: Emit, m: re.Match[str]) -> None:
        if value := _clean(m.group("rest")):
            emit(attribute, value, f"{third} {value}", f"{first} {value}", False)

    return handle


def _favourite(emit: Emit, m: re.Match[str]) -> None:
    what = m.group("what").lower()
    if value := _clean(m.group("rest")):
        emit(
            f"favourite:{what}",
            value,
            f"'s favourite {what} is {value}",
            f"My favourite {what} is {value}",
            True,
        )


# (pattern, handler). Patterns match within one sentence; several may match the same one.
_RULES: list[tuple[re.Pattern[str], Callable[[Emit, re.Match[str]], None]]] = [
    (
        re.compile(rf"{_I_AM} (?:also |still |now )?(?:a|an) (?!(?:big |huge )?fan of){_CLAUSE}"),
        _role,
    ),
    (re.compile(rf"\bI (?:now |still |currently )?work as (?:a|an) {_CLAUSE}"), _work_as),
    (re.compile(rf"\bI (?:now |still |currently )?work (?P<prep>at|for) {_CLAUSE}"), _work_at),
    (
        re.compile(
            rf"{_I_AM} (?:still |now |also |a )*(?P<diet>vegetarian|vegan|veggie|pescatarian)\b",
            re.IGNORECASE,
        ),
        _diet,
    ),
    (re.compile(rf"\bI (?:still |now |currently )?live in {_CLAUSE}"), _lives),
    (re.compile(rf"\bI(?:['’]ve| have)? (?:just |recently |finally )?moved {_CLAUSE}"), _moved),
    (re.compile(rf"\bI grew up in {_CLAUSE}"), _origin("hometown", "grew up in")),
    (re.compile(rf"\bI was born in {_CLAUSE}"), _origin("birthplace", "was born in")),
    (
        re.compile(
            rf"\b[Mm]y (?:(?P<adj>{_ADJECTIVES}) )?(?P<rel>{_REL_WORDS}),? "
            rf"(?:is (?:called |named )?)?(?P<name>{_NAME})"
        ),
        _relation,
    ),
    (
        re.compile(rf"(?P<name>{_NAME}) is my (?:(?P<adj>{_ADJECTIVES}) )?(?P<rel>{_REL_WORDS})\b"),
        _relation,
    ),
    (
        re.compile(
            r"\bI (?:have|['’]ve got|own)(?P<between>(?: [^.!?;,]*?)?) (?:a|an|two|three) "
            rf"(?:(?P<adj>[a-z]+) )?(?P<pet>{_alternation(_PETS)})\b"
        ),
        _pet,
    ),
    (
        re.compile(rf"{_I_AM} (?:very |really |severely |mildly )?allergic to {_LIST}"),
        _list("allergy", "is allergic to {value}", "am allergic to {value}"),
    ),
    (
        re.compile(
            r"\bI (?:really |absolutely |just |totally |also |still )?"
            rf"(?P<verb>love|adore|enjoy) {_LIST}"
        ),
        _list("likes", "{verb} {value}", "{verb} {value}"),
    ),
    (
        re.compile(rf"{_I_AM} (?:a )?(?:big |huge )?fan of {_LIST}"),
        _list("likes", "is a fan of {value}", "am a fan of {value}"),
    ),
    (
        re.compile(
            r"\bI (?:really |absolutely |just |totally |still )?"
            rf"(?P<verb>hate|can['’]t stand|cannot stand|dislike|detest|loathe) {_LIST}"
        ),
        _list("dislikes", "{verb} {value}", "{verb} {value}"),
    ),
    (
        re.compile(
            rf"\bI['’]ve been (?P<verb>(?!thinking|meaning|wondering|waiting)[a-z]+ing)\b{_CLAUSE}?"
        ),
        _doing("activity", "has been {value}", "have been {value}"),
    ),
    (
        re.compile(
            rf"{_I_AM} (?:currently |still |now )?(?P<verb>learning|studying|training for|"
            rf"practi[sc]ing|building|writing|teaching|volunteering at|working on) {_CLAUSE}"
        ),
        _doing("activity", "is {value}", "am {value}"),
    ),
    (re.compile(rf"\bI play {_CLAUSE}"), _doing_plain("hobby", "plays", "play")),
    (re.compile(rf"\bI study {_CLAUSE}"), _doing_plain("studies", "studies", "study")),
    (
        re.compile(rf"\b[Mm]y favou?rite (?P<what>[a-z]+(?: [a-z]+)?) (?:is|are) {_CLAUSE}"),
        _favourite,
    ),
]


class PatternFactExtractor:
    """The offline `FactExtractor` (see the module docstring for what it can and cannot do)."""

    name = "offline-patterns"
    batch_size = 500
    limits = LIMITS

    def extract(self, memories: Sequence[Memory], owner_name: str) -> list[FactDraft]:
        """Facts from the owner's own memories in `memories`; others' are skipped."""
        drafts: list[FactDraft] = []
        for memory in memories:
            if memory.is_owner:
                drafts.extend(self._from_memory(memory, owner_name))
        return drafts

    def _from_memory(self, memory: Memory, owner_name: str) -> Iterator[FactDraft]:
        found: list[FactDraft] = []

        def emit(attribute: str, value: str, third: str, first: str, exclusive: bool) -> None:
            statement = f"{owner_name}{third}" if third.startswith("'") else f"{owner_name} {third}"
            first_person = first if first.startswith("My ") else f"I {first}"
            found.append(
                FactDraft(
                    statement=statement,
                    first_person=first_person,
                    attribute=attribute,
                    value=value,
                    support=(memory.id,),
                    exclusive=exclusive,
                )
            )

        for sentence in sentences(memory.text):
            if sentence.rstrip().endswith("?"):
                continue
            for pattern, handle in _RULES:
                for match in pattern.finditer(sentence):
                    before = sentence[: match.start()]
                    if _HEDGE.search(before) or len(_QUOTES.findall(before)) % 2:
                        continue
                    handle(emit, match)
        # One sentence can say the same thing twice ("I live in X … I live in X").
        seen: set[tuple[str, str]] = set()
        for draft in found:
            key = (draft.attribute, draft.value.casefold())
            if key not in seen:
                seen.add(key)
                yield draft
