"""The `clock` process: APScheduler 3 jobs with fixed ids that only enqueue actors, run by the leader alone.

Interval jobs run every ``Intervals`` seconds (PURSER_CLOCK_<JOB>); some run at fixed times
(UTC): ``post_digests`` at ``digest_hour`` (09:00), and ``post_statements`` at ``statement_hour``
(06:00), which closes and posts last month's statements not closed yet: all of them on the
1st, and on a later day only those a clock that was down on the 1st missed. ``open_reviews``
an hour after the statements opens last quarter's access reviews the same way (on a
quarter's first day), and ``remind_reviews`` at half past the digest hour reminds the
Admins of undecided review items.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intervals:
    """Seconds between runs; the settings' PURSER_CLOCK_<NAME> overrides each (tests make them short)."""

    sweep_outbox: float = 15
    sync_usage: float = 300
    poll_leases: float = 15  # keys that spend are read this often between syncs (workers.quota.poll)
    sync_directory: float = 86400  # Slack's users.list, for deactivations no event told (workers.directory)
    evaluate_thresholds: float = 300
    roll_over_periods: float = 300
    end_raises: float = 60  # a raise stops counting at its end anyway; this announces it and pauses what it held up
    expire_requests: float = 900
    wipe_reveals: float = 900
    announce_leases: float = 60  # a leased key's warnings and end are told within a minute (store.leases)
    lock_ttl: float = 30
    check_spikes_minute: int = 5  # not an interval: the minute past every hour the spike check runs


class Clock:
    def __init__(self, lock, intervals: Intervals | None = None, *, digest_hour: int = 9, statement_hour: int = 6, name: str | None = None) -> None:
        from workers import maintenance

        self.lock = lock
        self.intervals = intervals or Intervals()
        self.name = name or f"clock-{os.getpid()}"
        self._leading = False
        self.scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
        for job, actor in (
            ("sweep_outbox", maintenance.sweep_outbox),
            ("sync_usage", maintenance.sync_usage),
            ("poll_leases", maintenance.poll_leases),
            ("sync_directory", maintenance.sync_directory),
            ("evaluate_thresholds", maintenance.evaluate_thresholds),
            ("roll_over_periods", maintenance.roll_over_periods),
            ("end_raises", maintenance.end_raises),
            ("expire_requests", maintenance.expire_requests),
            ("wipe_reveals", maintenance.wipe_reveals),
            ("announce_leases", maintenance.announce_leases),
        ):
            self.scheduler.add_job(self._enqueue, IntervalTrigger(seconds=getattr(self.intervals, job)), args=(job, actor), id=job, replace_existing=True)
        self.scheduler.add_job(self._enqueue, CronTrigger(hour=digest_hour, minute=0), args=("post_digests", maintenance.post_digests), id="post_digests", replace_existing=True)
        # Hours after midnight, so spend recorded just after the month ended is still the month's;
        # daily rather than on the 1st alone, since a scheduler that was down then does not run it later.
        self.scheduler.add_job(self._enqueue, CronTrigger(hour=statement_hour, minute=0), args=("post_statements", maintenance.post_statements), id="post_statements", replace_existing=True)
        # A few minutes past each hour: the hour just ended is complete, its usage synced (SYNC_USAGE).
        # Daily, so a clock down on a quarter's first day opens its reviews the next; each once per quarter.
        self.scheduler.add_job(self._enqueue, CronTrigger(hour=statement_hour + 1, minute=0), args=("open_reviews", maintenance.open_reviews), id="open_reviews", replace_existing=True)
        # Once a day in working hours: a review's undecided items are reminded (store.reviews.remind_reviews).
        self.scheduler.add_job(self._enqueue, CronTrigger(hour=digest_hour, minute=30), args=("remind_reviews", maintenance.remind_reviews), id="remind_reviews", replace_existing=True)
        spikes = CronTrigger(minute=self.intervals.check_spikes_minute)
        self.scheduler.add_job(self._enqueue, spikes, args=("check_spikes", maintenance.check_spikes), id="check_spikes", replace_existing=True)
        # Renew well inside the lock's lifetime so a live leader never loses it.
        self.scheduler.add_job(self._tick, IntervalTrigger(seconds=max(0.2, self.intervals.lock_ttl / 3)), id="leader_lock", replace_existing=True)

    def _tick(self) -> None:
        now = self.lock.tick()
        if now != self._leading:  # the lock's own `held` may lapse between ticks; log what the ticks saw
            self._leading = now
            log.info("%s %s the clock lock", self.name, "took" if now else "lost")

    def _enqueue(self, job: str, actor) -> None:
        if not self.lock.held:
            return
        actor.send()
        log.info("%s ran job %s", self.name, job)

    def start(self) -> None:
        self._tick()
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        self.lock.release()

