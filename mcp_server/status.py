"""The twin's status as the `twin://status` resource shows it: which model answers and how old it
is, how much memory there is, when it last trained and when it trains next."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from core.job_store import next_retraining
from memory.models import Visibility
from serving.service import Twin
from twin.privacy import Audience, ModelSide
from twin.registry import ModelMetrics

NO_SCHEDULE = (
    "No retraining is scheduled: `twin serve` schedules it (see [schedule] in twin.toml); "
    "otherwise the twin trains when its owner runs `twin train`."
)


class ModelStatus(BaseModel):
    version: str
    created_at: datetime
    age_hours: float = Field(description="Hours since this version was trained.")
    base: str
    strategy: str = Field(description="The chain-of-thought strategy it was trained with.")
    trained_on_memories: int
    healthy: bool = Field(
        description="False when a model file of this version is damaged and nothing can "
        "stand in for it: answers then come from memory retrieval alone."
    )
    metrics: dict[ModelSide, ModelMetrics] = Field(description="Its evaluation results.")


class LastTraining(BaseModel):
    version: str
    created_at: datetime
    promoted: bool = Field(description="Whether this version is the one answering now.")


class MemoryCounts(BaseModel):
    total: int = Field(description="Memories the caller's audience may see.")
    by_visibility: dict[str, int] = Field(
        default_factory=dict, description="Owner only: how many are private, friends, public."
    )


class TwinStatus(BaseModel):
    owner: str
    audience: str = Field(description="Whose view this status is drawn for.")
    serving: str = Field(
        description="'registry' (the trained twin model) or the configured model server."
    )
    model: ModelStatus | None = Field(description="The version answering now (null: none yet).")
    model_note: str = Field(
        default="", description="What serves, or what is wrong with it and what to do."
    )
    memories: MemoryCounts
    last_training: LastTraining | None = Field(description="The newest trained version.")
    next_training: datetime | None = Field(description="When training runs next, if scheduled.")
    next_training_note: str = ""


def twin_status(twin: Twin, audience: Audience, now: datetime | None = None) -> TwinStatus:
    """The status of `twin` as `audience` may see it (friends get counts of their view only)."""
    now = now or twin.clock.now()
    role = twin.settings.llm.twin
    health = twin.models.health()
    current = health.manifest
    model = None
    if current is not None:
        model = ModelStatus(
            version=current.version,
            created_at=current.created_at,
            age_hours=round((now - current.created_at).total_seconds() / 3600, 2),
            base=current.base,
            strategy=current.strategy,
            trained_on_memories=current.memory_count,
            healthy=health.healthy,
            metrics=current.metrics,
        )
    versions = twin.models.registry.versions()
    newest = versions[-1] if versions else None
    last = (
        LastTraining(
            version=newest.version,
            created_at=newest.created_at,
            promoted=current is not None and newest.version == current.version,
        )
        if newest
        else None
    )
    schedule = twin.settings.schedule
    next_run = next_retraining(twin.settings.paths.schedule_db) if schedule.enabled else None
    counts = MemoryCounts(total=twin.store.count(audience.memory_filter()))
    if audience.is_owner:
        counts.by_visibility = {
            v.value: twin.store.count(audience.memory_filter(visibilities=(v,))) for v in Visibility
        }
    return TwinStatus(
        owner=twin.owner,
        audience=audience.kind.value,
        serving=f"{role.backend}: {role.model or role.path}" if role.configured else "registry",
        model=model,
        model_note=health.summary(),
        memories=counts,
        last_training=last,
        next_training=next_run,
        next_training_note=(
            f"Checked on the cron {schedule.retrain_cron!r}: retrains when at least "
            f"{schedule.min_new_memories} memories are new or any was forgotten."
            if next_run
            else NO_SCHEDULE
        ),
    )
