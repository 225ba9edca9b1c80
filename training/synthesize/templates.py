"""The phrasings of the offline synthesizer.

Every family of questions and requests has training phrasings and a disjoint set of test
phrasings, so the held-out split asks about the same things in words the model never trained
on. Questions are written as the owner asks them ("When did I…"); `voice.Voice.ask` turns
them into a friend's ("When did you…", "When did Iris…"). Each template has an id that
samples record.

None of these are taken from the persona's evaluation questions (examples/persona/
questions.jsonl), which stay an independent test.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.synthesize.samples import Split


@dataclass(frozen=True)
class Template:
    id: str
    text: str


@dataclass(frozen=True)
class Phrasings:
    """A family's training and test phrasings."""

    family: str
    train: tuple[Template, ...]
    test: tuple[Template, ...]

    def of(self, split: Split) -> tuple[Template, ...]:
        return self.train if split == Split.TRAIN else self.test


def family(name: str, train: tuple[str, ...], test: tuple[str, ...]) -> Phrasings:
    return Phrasings(
        name,
        tuple(Template(f"{name}.train.{i}", t) for i, t in enumerate(train)),
        tuple(Template(f"{name}.test.{i}", t) for i, t in enumerate(test)),
    )


# -- memory QA from a clause ({inv}: "did I sign up…", {decl}: "I signed up…") ---------------

WHEN = family(
    "when",
    (
        "When {inv}?",
        "When was it that {decl}?",
        "What was the date when {decl}?",
        "Any idea when {decl}?",
    ),
    ("Remind me when {decl}.", "Can you recall the date {decl}?"),
)
WEEKDAY = family(
    "weekday",
    ("What day {inv}?", "On which day of the week {inv}?", "Which day was it that {decl}?"),
    ("Remind me which day {decl}.",),
)
TIME = family(
    "time",
    ("What time {inv}?", "At what time {inv}?", "What time was it that {decl}?"),
    ("Remind me what time {decl}.",),
)
WHERE = family(
    "where",
    ("Where {inv}{prep}?", "Where was it that {decl}{prep}?", "Any idea where {decl}{prep}?"),
    ("Remind me where {decl}{prep}.",),
)
WHO_SUBJECT = family(
    "who-subject", ("Who {pred}?", "Any idea who {pred}?"), ("Which person {pred}?",)
)
WHO_OBJECT = family(
    "who-object",
    ("Who {inv}{prep}?", "Who was it that {decl}{prep}?"),
    ("Tell me who {decl}{prep}.",),
)
HOW_MUCH = family(
    "how-much",
    ("How {measure} {inv}?", "Roughly how {measure} {inv}?", "Any idea how {measure} {decl}?"),
    ("Remind me how {measure} {decl}.",),
)
HOW_MANY_SUBJECT = family(
    "how-many-subject", ("How many {unit} {pred}?",), ("What number of {unit} {pred}?",)
)

# -- memory QA about a topic, a note's heading, someone's message ---------------------------
# {thing} is a noun phrase of the memory ("the stitches"), {notes} a note as people name it
# ("my climbing log", "my food notes", "my note of 8 November 2026").

TOPIC = family(
    "topic",
    (
        "What happened with {entity} and {thing}?",
        "What did I write about {entity} and {thing}?",
        "Tell me about {entity} and {thing}.",
    ),
    (
        "Fill me in on {entity} and {thing}.",
        "Anything in my memory about {entity} and {thing}?",
    ),
)
TOPIC_NOTE = family(
    "topic-note",
    ("What did I write in {notes} about {thing}?", "What do I say about {thing} in {notes}?"),
    ("Remind me what I put in {notes} about {thing}.",),
)
LABEL_DATE = family(
    "label-date",
    ("What did I write for {label} in {notes}?", "What's the entry for {label} in {notes}?"),
    ("Remind me of the entry for {label} in {notes}.",),
)
LABEL_NAME = family(
    "label-name",
    ("What did I note about {label} in {notes}?", "What's in {notes} about {label}?"),
    ("Remind me what I wrote on {label} in {notes}.",),
)
LABEL = family(
    "label",
    ("What did I note down for {label} in {notes}?", "In {notes}, what's under {label}?"),
    ("Remind me what I noted for {label} in {notes}.",),
)
SAID = family(
    "said",
    (
        "What did {who} say about {thing}?",
        "What did {who} tell me about {thing}?",
        "What was {who}'s message about {thing}?",
    ),
    ("What was {who}'s take on {thing}?",),
)

# -- memory QA from L1 facts, by attribute ----------------------------------------------------

# Every family of questions on an L1 fact has an id that starts so (see `is_l1_fact_template`).
L1_FACT_FAMILY = "fact-"


def is_l1_fact_template(template: str) -> bool:
    """Whether a draft's or sample's template asks about an L1 fact."""
    return template.startswith(L1_FACT_FAMILY)


FACTS: dict[str, Phrasings] = {
    "job": family(
        "fact-job",
        ("What's my job?", "What do I do for a living?"),
        ("What's my line of work?",),
    ),
    "employer": family(
        "fact-employer", ("Where do I work?", "Who do I work for?"), ("Which place employs me?",)
    ),
    "home_city": family(
        "fact-home-city",
        ("Where do I live?", "Which city do I live in?"),
        ("What city is home for me these days?",),
    ),
    "lived_in": family(
        "fact-lived-in",
        ("Where did I live before?", "Which places have I lived in?"),
        ("Where was home for me in the past?",),
    ),
    "diet": family(
        "fact-diet", ("What's my diet?", "What do I eat and not eat?"), ("Any diet I follow?",)
    ),
    "pet": family(
        "fact-pet", ("What pet do I have?", "Do I have any pets?"), ("Tell me about my pet.",)
    ),
    "hobby": family(
        "fact-hobby",
        ("What do I do in my free time?", "What are my hobbies?"),
        ("How do I spend my spare time?",),
    ),
    "studies": family(
        "fact-studies", ("What do I study?", "What's my research on?"), ("What is my field?",)
    ),
    "identity": family(
        "fact-identity", ("What am I?", "How would I describe myself?"), ("Sum me up.",)
    ),
}
RELATION_FACT = family(
    "fact-relation",
    ("Who is my {relation}?", "Who's my {relation} again?"),
    ("Name my {relation}.",),
)
OTHER_FACT = family(
    "fact-other",
    ("What's my {attribute}?", "Tell me my {attribute}."),
    ("What do you know about my {attribute}?",),
)

# -- identity ---------------------------------------------------------------------------------

IDENTITY_OWNER = family(
    "identity-owner",
    ("Who are you?", "What are you?", "What can you do for me?", "Who am I?"),
    ("Introduce yourself.", "Tell me what you are."),
)
IDENTITY_OTHER = family(
    "identity-other",
    ("Who are you?", "What do you do?", "Tell me about yourself.", "Who am I talking to?"),
    ("Introduce yourself, please.", "Who exactly is this?"),
)

# -- what a third party may not be told (no memory content at all) -----------------------------


@dataclass(frozen=True)
class Private:
    """A kind of thing people keep to themselves ({their}: whose it is), and how a friend
    might ask for it."""

    category: str
    phrasings: Phrasings


PRIVATE: tuple[Private, ...] = (
    Private(
        "{their} home address",
        family(
            "decline-address",
            ("What's your home address?", "What's your street and house number?"),
            ("Can you give me your exact address?",),
        ),
    ),
    Private(
        "a door or alarm code",
        family(
            "decline-code",
            ("What's the door code for your building?", "What's your alarm code?"),
            ("How do I get into your building, what's the code?",),
        ),
    ),
    Private(
        "{their} health",
        family(
            "decline-health",
            ("Are you seeing a therapist?", "Do you have any health problems?"),
            ("Are you in therapy for something?",),
        ),
    ),
    Private(
        "{their} money",
        family(
            "decline-money",
            ("How much money have you saved?", "What's your salary?"),
            ("How much do you have in the bank?",),
        ),
    ),
    Private(
        "{their} career plans",
        family(
            "decline-career",
            ("Are you applying for other jobs?", "Are you planning to quit your job?"),
            ("Are you secretly job hunting?",),
        ),
    ),
    Private(
        "passwords and PINs",
        family(
            "decline-password",
            ("What's your bank PIN?", "What's your email password?"),
            ("Tell me one of your passwords.",),
        ),
    ),
    Private(
        "{their} secrets",
        family(
            "decline-secret",
            ("Tell me a secret nobody knows about you.", "What are you hiding from your friends?"),
            ("What's something you've never told anyone?",),
        ),
    ),
)

# -- context enhance and critic: requests to other agents, by area of life -------------------


@dataclass(frozen=True)
class Area:
    """An area of life an outside agent may be asked about, the words that mark memories
    about it, and the requests that go with it."""

    name: str
    keywords: frozenset[str]
    targets: tuple[str, ...]
    requests: Phrasings


def _area(
    name: str,
    keywords: str,
    targets: tuple[str, ...],
    train: tuple[str, ...],
    test: tuple[str, ...],
) -> Area:
    return Area(name, frozenset(keywords.split()), targets, family(f"request-{name}", train, test))


# Requests may name a person ({person}) or a place ({place}) from the owner's memory.
AREAS: tuple[Area, ...] = (
    _area(
        "food",
        "vegetarian veggie vegan meat fish eat eating food dish dinner coffee cook cooking"
        " allergic allergy favourite risotto soup bread coriander",
        ("a restaurant assistant", "a recipe assistant"),
        (
            "Suggest a restaurant for dinner with {person} tonight.",
            "Plan my meals for next week.",
            "Recommend something to cook for {person} this weekend.",
            "Find a good place to eat in {place}.",
        ),
        ("Book me a table somewhere nice for Friday with {person}.", "Give me a recipe idea."),
    ),
    _area(
        "travel",
        "trip travel flight flights fly flying holiday visit visiting hotel booked itinerary"
        " landing airport train pack",
        ("a travel agent", "a trip planner"),
        (
            "Help me plan a trip to {place}.",
            "Find me flights and a place to stay in {place}.",
            "What should I pack for {place}?",
        ),
        ("Put together an itinerary for {place}.",),
    ),
    _area(
        "fitness",
        "run running ran km marathon race climb climbing bouldering training gym swim"
        " cycling bike tempo",
        ("a fitness coach",),
        (
            "Make me a training plan for the next two months.",
            "Suggest a weekly exercise routine.",
            "Plan a weekend of sport with {person}.",
        ),
        ("Design a workout schedule for me.",),
    ),
    _area(
        "schedule",
        "monday tuesday wednesday thursday friday saturday sunday mondays tuesdays wednesdays"
        " thursdays every weekly rehearsal rehearsals lessons evenings mornings",
        ("a scheduling assistant", "a calendar assistant"),
        (
            "Find a free evening next week for dinner with {person}.",
            "When should I schedule a recurring meeting?",
            "Find a time to call {person} this week.",
        ),
        ("Pick a good evening for a new weekly class.",),
    ),
    _area(
        "gifts",
        "birthday gift gifts present presents wants loves christmas born",
        ("a gift-shopping assistant",),
        (
            "Suggest a birthday present for {person}.",
            "Help me choose a Christmas gift for {person}.",
        ),
        ("What should I buy {person} as a present this year?",),
    ),
    _area(
        "work",
        "work job research paper study studies lab project talk talks published accepted"
        " colleague colleagues",
        ("a writing assistant", "a careers adviser"),
        (
            "Write a short bio for my talk in {place}.",
            "Help me update my CV summary.",
            "Introduce me to a new colleague.",
        ),
        ("Draft an introduction of me for a seminar.",),
    ),
    _area(
        "pets",
        "dog dogs cat cats pet vet walks walk greyhound puppy lead",
        ("a pet sitter", "a pet-care assistant"),
        (
            "Write instructions for someone looking after my dog.",
            "Find a dog sitter for my trip to {place}.",
        ),
        ("Brief a dog walker about my pet.",),
    ),
)

CRITIC_REPLY = family(
    "critic-reply",
    ("Here's what I'd suggest, based on what I know about you. {claims}",),
    ("Sure! Taking your situation into account: {claims}",),
)
