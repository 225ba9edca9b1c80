"""L1 (bio, topics, facts) as the MCP resources show it, for one audience at a time.

The server reads L1 through a `ProfileReader`: a function from an audience to the profile that
audience may see, or None while no profile is built. It must return the audience's own scope (a
friend gets the bio, topics and facts built from what friends may see), never the owner's
filtered afterwards, which is what `memory.profile.Profile` does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, Field

from memory.profile import Profile, ProfileView
from memory.store import MemoryStore
from twin.privacy import Audience

ProfileReader = Callable[[Audience], ProfileView | None]

NOT_BUILT = "The profile (L1: bio, topics, facts) has not been built yet."


def stored_profile(store: MemoryStore, owner: str) -> ProfileReader:
    """The reader of the L1 profile kept in `store` (None until the first build)."""
    profile = Profile(store, owner)

    def read(audience: Audience) -> ProfileView | None:
        view = profile.for_audience(audience.visibilities)
        return view if view.build_id is not None else None

    return read


class TopicOut(BaseModel):
    label: str
    description: str
    keywords: list[str]
    memories: int = Field(description="How many memories the topic groups.")
    first: datetime | None
    last: datetime | None


class Topics(BaseModel):
    built: bool
    built_at: datetime | None = None
    note: str = ""
    topics: list[TopicOut] = Field(default_factory=list)


class FactOut(BaseModel):
    statement: str
    attribute: str
    value: str
    status: str
    newest: datetime | None = Field(description="When the newest memory behind it dates from.")
    memory_ids: list[str] = Field(description="The memories it comes from.")


class Facts(BaseModel):
    built: bool
    built_at: datetime | None = None
    note: str = ""
    facts: list[FactOut] = Field(default_factory=list)


def bio_markdown(owner: str, view: ProfileView | None) -> str:
    """The bio as Markdown: who the owner is, then what they have been up to lately."""
    if view is None or not view.bios:
        return f"# {owner}\n\n{NOT_BUILT}\n"
    parts = [f"# {owner}", view.bio("global", "third") or "(no bio yet)"]
    status = view.bio("status", "third")
    if status:
        parts += ["## Lately", status]
    if view.built_at:
        parts.append(f"_Built {view.built_at:%Y-%m-%d %H:%M} UTC._")
    return "\n\n".join(parts) + "\n"


def topics_of(view: ProfileView | None) -> Topics:
    if view is None:
        return Topics(built=False, note=NOT_BUILT)
    return Topics(
        built=True,
        built_at=view.built_at,
        topics=[
            TopicOut(
                label=t.label,
                description=t.description,
                keywords=list(t.keywords),
                memories=t.size,
                first=t.first,
                last=t.last,
            )
            for t in view.topics
        ],
    )


def facts_of(view: ProfileView | None) -> Facts:
    if view is None:
        return Facts(built=False, note=NOT_BUILT)
    return Facts(
        built=True,
        built_at=view.built_at,
        facts=[
            FactOut(
                statement=f.statement,
                attribute=f.attribute,
                value=f.value,
                status=f.status,
                newest=f.newest,
                memory_ids=[m.id for m in f.sources],
            )
            for f in view.facts
        ],
    )
