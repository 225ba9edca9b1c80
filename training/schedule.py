"""Scheduled, incremental retraining (APScheduler with a persistent SQLite job store).

`twin serve` runs a `RetrainScheduler`: on the configured cron it builds L1 incrementally and,
when memory has moved on since the serving model was trained (enough new memories, or anything
forgotten — a forgotten memory must leave the weights too), runs the training pipeline, which
registers and promotes the new version; the servers pick it up without a restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from core.job_store import JOBS_TABLE, RETRAIN_JOB, job_store_url, next_retraining
from memory.store import MemoryStore
from training.pipeline import TrainingRun
from training.recipe import RunOptions
from twin.config import ConfigError, Settings, load_settings
from twin.ingest import open_store
from twin.profile_writers import profile_builder
from twin.registry import ModelRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainDecision:
    """Whether memory has moved on enough since the serving model to train again, and why."""

    needed: bool
    reason: str
    new_memories: int = 0
    forgotten: int = 0


def decide(store: MemoryStore, registry: ModelRegistry, min_new: int) -> RetrainDecision:
    """Compare memory with the serving model: new memories since it, and forgotten ones."""
    current = registry.current()
    if current is None:
        return RetrainDecision(True, "no model has been trained yet", store.count())
    n_new, n_forgotten = store.changes_since(current.created_at)
    if n_forgotten:
        return RetrainDecision(
            True,
            f"{n_forgotten} memories were forgotten since {current.version}",
            n_new,
            n_forgotten,
        )
    if n_new >= min_new:
        return RetrainDecision(True, f"{n_new} new memories since {current.version}", n_new)
    return RetrainDecision(
        False, f"only {n_new} new memories since {current.version} (< {min_new})", n_new
    )


def retrain_if_needed(home: str, *, force: bool = False) -> RetrainDecision:
    """The scheduled job: build L1, then train if memory moved on (or `force`)."""
    settings = load_settings(home)
    with open_store(settings) as store:
        report = profile_builder(store, settings).build()
        log.info("profile %s build %s: %d facts", report.mode, report.build_id, report.facts_total)
        registry = ModelRegistry(settings.paths.models_dir)
        decision = decide(store, registry, settings.schedule.min_new_memories)
        if not (decision.needed or force):
            log.info("retraining skipped: %s", decision.reason)
            return decision
        log.info("retraining: %s", decision.reason if decision.needed else "asked to")
        options = RunOptions.from_settings(settings.training)
        result = TrainingRun.create(settings, store, options).run()
        log.info("trained %s in %.0f s", result.version, result.seconds)
        return decision


class RetrainScheduler:
    """Runs `retrain_if_needed` on the configured cron, in a background thread; the job is
    kept in `<home>/schedule.sqlite`, so a missed run (the machine was off) runs at start-up."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        try:
            self.trigger = CronTrigger.from_crontab(settings.schedule.retrain_cron)
        except ValueError as exc:
            raise ConfigError(
                f"schedule.retrain_cron {settings.schedule.retrain_cron!r} is not a valid cron "
                f'expression ({exc}); e.g. "30 3 * * *" is every night at 03:30'
            ) from exc
        self.scheduler = BackgroundScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(
                    url=job_store_url(settings.paths.schedule_db), tablename=JOBS_TABLE
                )
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600},
        )

    async def start(self) -> None:
        self.scheduler.start()
        self.scheduler.add_job(
            retrain_if_needed,
            self.trigger,
            args=[str(self.settings.home)],
            id=RETRAIN_JOB,
            name="build L1 and retrain when memory moved on",
            replace_existing=True,
        )
        log.info("next retraining check at %s", self.next_run())

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)

    def next_run(self) -> datetime | None:
        return next_retraining(Path(self.settings.paths.schedule_db))
