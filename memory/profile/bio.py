"""Bios: what a scope's bio may be written from, and the offline writer that assembles it.

The global bio says who the owner is (work, where they live, people, tastes, what they do,
what they talk about); the status bio says what has been going on in the last `status_days`
before the newest memory the scope can see. The offline writer assembles both, in first and
third person, from fact statements grouped by attribute and the labels of the largest topics:
plain and a little stiff, but every clause traces back to a fact or a topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from memory.profile.records import BioFact, BioRequest, BioTexts, BioTopic, Scope

STATUS_DAYS = 60
MAX_FACTS = 40
MAX_TOPICS = 6
MAX_PER_SENTENCE = 6

# The order a global bio goes through facts, by attribute (or its part before ":").
_SECTIONS: list[tuple[str, frozenset[str]]] = [
    (
        "who",
        frozenset(
            ["job", "employer", "identity", "diet", "studies", "birthplace", "hometown", "age"]
        ),
    ),
    ("where", frozenset(["home_city", "lived_in"])),
    (
        "people",
        frozenset(["sibling", "parent", "child", "grandparent", "family", "partner", "relation"]),
    ),
    ("pets", frozenset(["pet"])),
    ("tastes", frozenset(["likes", "dislikes", "allergy", "favourite"])),
    ("doing", frozenset(["hobby", "activity"])),
]


def bio_request(
    owner_name: str,
    scope: Scope,
    facts: Sequence[BioFact],
    topics: Sequence[BioTopic],
    now: datetime | None,
    *,
    status_days: int = STATUS_DAYS,
    max_facts: int = MAX_FACTS,
    max_topics: int = MAX_TOPICS,
) -> BioRequest:
    """The input of a scope's bios: the newest `max_facts` facts, the largest `max_topics`
    topics, and the ones of them active within `status_days` of `now`.

    Topics' `recent_size` (members inside the window) must already be counted by the caller.
    """
    since = now - timedelta(days=status_days) if now else None
    chosen = sorted(facts, key=lambda f: (-(f.newest.timestamp() if f.newest else 0), f.key))
    chosen = sorted(chosen[:max_facts], key=lambda f: f.key)
    largest = sorted(topics, key=lambda t: (-t.size, t.key))[:max_topics]
    recent_facts = tuple(f for f in chosen if since and f.newest and f.newest >= since)
    recent_topics = sorted(
        (t for t in topics if t.recent_size > 0), key=lambda t: (-t.recent_size, t.key)
    )[:max_topics]
    return BioRequest(
        owner_name=owner_name,
        scope=scope,
        facts=tuple(chosen),
        topics=tuple(largest),
        recent_facts=recent_facts,
        recent_topics=tuple(recent_topics),
        now=now,
        since=since,
    )


class TemplateBioWriter:
    """The offline `BioWriter`: bios assembled from facts and topic labels."""

    name = "offline-template"

    def write(self, request: BioRequest) -> BioTexts:
        full = request.owner_name
        first_name = full.split()[0] if full.split() else full
        if request.is_empty:
            return BioTexts(
                global_third=f"Nothing about {full} is known to this audience yet.",
                global_first="There is nothing about me here yet.",
                status_third=f"Nothing recent about {full} is known to this audience.",
                status_first="Nothing recent here yet.",
            )
        third, first = self._global(request, full, first_name)
        status_third, status_first = self._status(request, full, first_name)
        return BioTexts(
            global_third=third,
            global_first=first,
            status_third=status_third,
            status_first=status_first,
            cited=tuple(f.key for f in request.facts),
        )

    def _global(self, request: BioRequest, full: str, first_name: str) -> tuple[str, str]:
        third: list[str] = []
        first: list[str] = []
        grouped = _by_section(request.facts)
        for section, _ in _SECTIONS:
            facts = grouped.get(section, [])
            if not facts:
                continue
            if section == "people":
                people = [f"{f.value} ({_relation(f.attribute)})" for f in facts]
                mine = [f"{f.value} (my {_relation(f.attribute)})" for f in facts]
                third.append(f"People in {first_name}'s life: {_join(people)}.")
                first.append(f"People in my life: {_join(mine)}.")
                continue
            subject = full if not third else first_name
            third.extend(_sentences(subject, full, [f.statement for f in facts], third=True))
            first.extend(_sentences("I", "I", [f.first_person for f in facts], third=False))
        for fact in grouped.get("other", []):
            third.append(_sentence(fact.statement))
            first.append(_sentence(fact.first_person))
        if request.topics:
            labels = "; ".join(t.label for t in request.topics)
            third.append(f"{first_name if third else full} often talks about: {labels}.")
            first.append(f"I often talk about: {labels}.")
        return " ".join(third), " ".join(first)

    def _status(self, request: BioRequest, full: str, first_name: str) -> tuple[str, str]:
        if not request.recent_facts and not request.recent_topics:
            return (
                f"Nothing recent about {full} is known to this audience.",
                "Nothing recent here yet.",
            )
        when = _date(request.since) if request.since else "recently"
        third: list[str] = []
        first: list[str] = []
        if request.recent_topics:
            labels = "; ".join(t.label for t in request.recent_topics)
            third.append(f"Since {when}, {full} has mostly been talking about: {labels}.")
            first.append(f"Since {when}, I've mostly been talking about: {labels}.")
        if request.recent_facts:
            subject = first_name if third else full
            statements = [f.statement for f in request.recent_facts]
            said = _sentences(subject, full, statements, third=True)
            third.extend(["Recently:", *said] if request.recent_topics else said)
            said_first = _sentences("I", "I", [f.first_person for f in request.recent_facts], False)
            first.extend(["Recently:", *said_first] if request.recent_topics else said_first)
        return " ".join(third), " ".join(first)


def _by_section(facts: Sequence[BioFact]) -> dict[str, list[BioFact]]:
    grouped: dict[str, list[BioFact]] = {}
    for fact in facts:
        family = fact.attribute.split(":", 1)[0]
        section = next((name for name, members in _SECTIONS if family in members), "other")
        grouped.setdefault(section, []).append(fact)
    return grouped


def _sentences(subject: str, own: str, statements: Sequence[str], third: bool) -> list[str]:
    """Statements that start with `own` ("Iris Calder works…", "I work…") merged into one
    sentence about `subject`; the rest are kept as their own sentences."""
    predicates: list[str] = []
    alone: list[str] = []
    for statement in statements:
        if statement.startswith(own + " "):
            predicates.append(statement[len(own) + 1 :].rstrip("."))
        else:
            alone.append(_sentence(statement))
    out = []
    for start in range(0, len(predicates), MAX_PER_SENTENCE):
        out.append(f"{subject} {_join(predicates[start : start + MAX_PER_SENTENCE])}.")
        subject = subject if not third else subject.split()[0]
    return out + alone


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _relation(attribute: str) -> str:
    family, _, detail = attribute.partition(":")
    return (detail or family).replace("_", " ")


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _date(when: datetime) -> str:
    return f"{when.day} {when:%B %Y}"
