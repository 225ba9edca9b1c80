"""Small, realistic memories for L1 tests: three themes the owner writes about, and helpers to
put them in a store with the timestamps and visibilities a test needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from memory.models import Kind, MemoryDraft, OwnerIdentity, ParsedSource, SourceRef, Visibility
from memory.store import IngestReport, MemoryStore, memory_id

OWNER = "Iris Calder"
IDENTITY = OwnerIdentity(names=(OWNER,))
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

CLIMBING = [
    "Bouldering at Vertigo tonight, the new overhang problems are brutal on the fingers",
    "Finally sent the blue crimpy route at the climbing wall after three sessions",
    "My forearms are pumped from the overhang wall, climbing twice this week",
    "Chalk bag, climbing shoes and tape packed for the bouldering session",
    "The heel hook on the green boulder problem is the whole trick",
    "Climbing session with Tomás, we projected the roof problem at Vertigo",
    "Skin on my fingertips is shredded after a long bouldering night",
    "New climbing shoes are too tight, my toes hate the steep boulders",
]
COOKING = [
    "Baked a sourdough loaf with a crispy crust and an open crumb",
    "Mushroom risotto tonight with porcini, parmesan and a splash of white wine",
    "Fed the sourdough starter twice today, it doubled in four hours",
    "Tried a new recipe: roasted pumpkin soup with sage and brown butter",
    "The bread dough needs a longer proof in this cold kitchen",
    "Chopped onions, garlic and mushrooms for the risotto base",
    "Homemade pizza dough rested overnight, baking it in the hot oven",
    "Lentil curry with coconut milk and fresh ginger for dinner",
]
CUTTLEFISH = [
    "Filmed the cuttlefish on the checkerboard tank to measure camouflage patterns",
    "Cuttlefish chose disruptive patterns on high contrast backgrounds in today's trials",
    "Analysing camouflage videos of juvenile cuttlefish for the paper",
    "The reviewers asked for more trials on cuttlefish background matching",
    "Tank four cuttlefish showed mottled camouflage on gravel substrate",
    "Writing the methods section about cuttlefish camouflage experiments",
    "Cephalopod camouflage seminar at the aquarium, talked about cuttlefish skin",
    "Uploaded the cuttlefish camouflage dataset for the lab meeting",
]
THEMES = {"climbing": CLIMBING, "cooking": COOKING, "cuttlefish": CUTTLEFISH}


@dataclass(frozen=True)
class Line:
    """One memory to add: its text, its day after T0, who may see it, and who wrote it."""

    text: str
    day: int = 0
    visibility: Visibility = Visibility.FRIENDS
    author: str = OWNER
    shared_with: str | None = None


def source(key: str = "telegram:chat:7") -> SourceRef:
    return SourceRef(key=key, kind="telegram", name="Telegram: test chat")


def ingest(store: MemoryStore, lines: list[Line], key: str = "telegram:chat:7") -> list[str]:
    """Add `lines` in one import; returns their memory ids in order."""
    ref = source(key)
    start = sum(n for s, n in store.sources() if s.key == key)
    drafts = [
        MemoryDraft(
            text=line.text,
            kind=Kind.CHAT,
            source_id=str(start + i),
            author=line.author,
            timestamp=T0 + timedelta(days=line.day, minutes=i),
            thread=ref.key,
            visibility=line.visibility,
            shared_with=line.shared_with,
        )
        for i, line in enumerate(lines)
    ]
    report: IngestReport = store.ingest(
        ParsedSource(source=ref, drafts=drafts),
        owner=IDENTITY,
        visibility=Visibility.PUBLIC,
    )
    assert report.added == len(lines)
    return [memory_id(ref.key, d.source_id) for d in drafts]


def themed(day: int = 0) -> list[Line]:
    """The three themes, interleaved as a chat would be."""
    return [
        Line(text, day=day + i)
        for i, group in enumerate(zip(CLIMBING, COOKING, CUTTLEFISH, strict=True))
        for text in group
    ]
