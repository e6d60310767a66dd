"""Spend spikes: a key or a project spending far above its usual for that hour of the week.

The rule, checked each hour for the hour just ended (complete hours only):

- **The usual.** For an hour H, the median of the spend in H − 1 week, H − 2 weeks … H − N
  weeks (``SpikeRule.weeks``, default 4); an hour with no spend counts as $0. The same hour
  of the week is found by subtracting whole weeks in UTC, which has no daylight saving:
  month ends, New Year and leap days change nothing. Weekday peaks and quiet nights are
  each compared with their own kind, so a weekly pattern never looks like a spike.
- **The day.** The 24 hours ending with H against the median of the same 24-hour window
  in each of the previous N weeks: a rise spread over many hours, none of them high enough
  alone, is caught too.
- **A spike** is spent > multiple × max(usual, floor) in either window (``multiple``
  default 3). The floors ($1 an hour, $5 a day by default) keep a key that usually spends
  nothing from alerting on cents.
- **Scopes.** Every key, and every project (the sum of its keys). A project that spikes is
  announced naming the key that spent most in the window; a key of it that spiked in the
  same check is recorded as announced with it, not posted again. A muted key
  (``spike_mutes``) is not announced, and its spend is left out of its project's check:
  muting the key that spikes silences it everywhere until the mute ends.
- **Once a spell.** ``spike_alerts`` holds each announcement; a scope announced less than
  24 hours before the hour checked is not announced again (a spike lasting three hours is
  one alert; one still going after a day is announced again once a day). The workspace row
  is locked for the check and the insert does nothing on a repeat, so two checks of the
  same hour announce it once.

Spike alerts are independent of budgets and thresholds: they come before any threshold
is reached. The announcement is an outbox action (POST_SPIKE) emitted in the transaction
that records it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Callable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import InvalidInput, NotFound
from store.models import ApiKey
from store.models_spikes import SpikeAlert, SpikeMute
from store.permissions import Actor, Permission, authorize, load_workspace
from store.spend_series import hourly
from store.thresholds import dialect_insert
from store.types import ActionKind, Scope, utcnow

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
#: no second alert for the same scope within this long of the last
SPELL = timedelta(hours=24)

#: hour start -> micro-dollars spent in that hour; a missing hour spent nothing
Series = Mapping[datetime, int]


@dataclass(frozen=True)
class SpikeRule:
    """What counts as a spike (the settings' PURSER_SPIKE_*)."""

    multiple: float = 3
    weeks: int = 4
    hour_floor_micros: int = 1_000_000  # $1
    day_floor_micros: int = 5_000_000  # $5

    def __post_init__(self) -> None:
        if not self.multiple > 1:
            raise ValueError(f"a spike is a multiple of the usual above 1, not {self.multiple}")
        if self.weeks < 1:
            raise ValueError(f"the usual needs at least one week before, not {self.weeks}")

    def exceeds(self, spent: int, usual: int, floor: int) -> bool:
        # In whole numbers: spent > multiple × max(usual, floor), with the multiple as a fraction.
        ratio = Fraction(self.multiple).limit_denominator(1000)
        return spent * ratio.denominator > ratio.numerator * max(usual, floor)

    def since(self, hour: datetime) -> datetime:
        """The first hour a check of ``hour`` reads: the oldest day window's start."""
        return hour + HOUR - DAY - self.weeks * WEEK


def hour_start(at: datetime) -> datetime:
    return at.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def last_complete_hour(now: datetime) -> datetime:
    """The hour just ended: the one a check at ``now`` judges."""
    return hour_start(now) - HOUR


def median(values: list[int]) -> int:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) // 2


def usual_hour(series: Series, hour: datetime, weeks: int) -> int:
    """The median of the same hour of the week over the ``weeks`` before."""
    return median([series.get(hour - WEEK * n, 0) for n in range(1, weeks + 1)])


def day_spend(series: Series, end: datetime) -> int:
    """Spend in the 24 hours before ``end``."""
    return sum(series.get(end - HOUR * n, 0) for n in range(1, 25))


def usual_day(series: Series, end: datetime, weeks: int) -> int:
    return median([day_spend(series, end - WEEK * n) for n in range(1, weeks + 1)])


@dataclass(frozen=True)
class Finding:
    """A spike found in the hour ``hour``, with both windows' figures."""

    hour: datetime
    window: str  # "hour" or "day": the one that spiked (the hour when both did)
    spent_hour: int
    usual_hour: int
    spent_day: int
    usual_day: int

    @property
    def spent(self) -> int:
        return self.spent_hour if self.window == "hour" else self.spent_day

    @property
    def usual(self) -> int:
        return self.usual_hour if self.window == "hour" else self.usual_day


def judge(series: Series, hour: datetime, rule: SpikeRule) -> Finding | None:
    """The spike in the complete hour ``hour`` of one scope's series, or None."""
    end = hour + HOUR
    spent_h, usual_h = series.get(hour, 0), usual_hour(series, hour, rule.weeks)
    spent_d, usual_d = day_spend(series, end), usual_day(series, end, rule.weeks)
    if rule.exceeds(spent_h, usual_h, rule.hour_floor_micros):
        return Finding(hour, "hour", spent_h, usual_h, spent_d, usual_d)
    if rule.exceeds(spent_d, usual_d, rule.day_floor_micros):
        return Finding(hour, "day", spent_h, usual_h, spent_d, usual_d)
    return None


def window_spend(series: Series, finding: Finding) -> int:
    """What ``series`` spent in the finding's window."""
    return series.get(finding.hour, 0) if finding.window == "hour" else day_spend(series, finding.hour + HOUR)


@dataclass
class Scoped:
    """One workspace's hourly rows as series per key and per project (muted keys left out of their projects)."""

    keys: dict[int, dict[datetime, int]]
    projects: dict[int, dict[datetime, int]]
    project_keys: dict[int, set[int]]


def scoped(rows: list[tuple[datetime, int, int | None, int]], muted: set[int] = frozenset()) -> Scoped:
    keys: dict[int, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    projects: dict[int, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    members: dict[int, set[int]] = defaultdict(set)
    for hour, key_id, project_id, amount in rows:
        keys[key_id][hour] += amount
        if project_id is not None and key_id not in muted:
            projects[project_id][hour] += amount
            members[project_id].add(key_id)
    return Scoped(dict(keys), dict(projects), dict(members))


@dataclass(frozen=True)
class Spike:
    """What a check found to announce: the scope, the key to name (and mute), the finding."""

    scope: Scope
    scope_id: int
    key_id: int
    finding: Finding
    also_keys: tuple[tuple[int, Finding], ...] = ()  # keys of the project that spiked with it, announced with it


def find_spikes(series: Scoped, hour: datetime, rule: SpikeRule, muted: set[int] = frozenset()) -> list[Spike]:
    """Projects first; a key that spiked with its project is announced with it, not on its own."""
    found: list[Spike] = []
    key_findings = {k: f for k, s in sorted(series.keys.items()) if k not in muted and (f := judge(s, hour, rule))}
    covered: set[int] = set()
    for project_id, s in sorted(series.projects.items()):
        finding = judge(s, hour, rule)
        if finding is None:
            continue
        members = sorted(series.project_keys[project_id])
        top = max(members, key=lambda k: (window_spend(series.keys[k], finding), -k))
        also = tuple((k, key_findings[k]) for k in members if k in key_findings)
        covered.update(k for k, _ in also)
        found.append(Spike(Scope.PROJECT, project_id, top, finding, also))
    for key_id, finding in key_findings.items():
        if key_id not in covered:
            found.append(Spike(Scope.KEY, key_id, key_id, finding))
    return found


def muted_keys(s: Session, workspace_id: int, now: datetime) -> set[int]:
    stmt = select(SpikeMute.key_id).join(ApiKey, ApiKey.id == SpikeMute.key_id).where(ApiKey.workspace_id == workspace_id, SpikeMute.until > now)
    return set(s.scalars(stmt))


def lineage(s: Session, workspace_id: int) -> Callable[[int], int]:
    """Each key id → the newest key rotated from it (itself when it was never rotated)."""
    successor = dict(s.execute(select(ApiKey.rotated_from_id, ApiKey.id).where(ApiKey.workspace_id == workspace_id, ApiKey.rotated_from_id.is_not(None))).all())

    def newest(key_id: int) -> int:
        seen = {key_id}
        while key_id in successor and successor[key_id] not in seen:
            key_id = successor[key_id]
            seen.add(key_id)
        return key_id

    return newest


def _in_spell(s: Session, workspace_id: int, hour: datetime) -> set[tuple[Scope, int]]:
    stmt = select(SpikeAlert.scope, SpikeAlert.scope_id).where(SpikeAlert.workspace_id == workspace_id, SpikeAlert.hour > hour - SPELL, SpikeAlert.hour <= hour)
    return {(Scope(scope), scope_id) for scope, scope_id in s.execute(stmt)}


def check_spikes(s: Session, workspace_id: int, rule: SpikeRule, now: datetime) -> list[Spike]:
    """Announce the spikes of one workspace in the hour just ended at ``now``; returns those announced."""
    ws = load_workspace(s, workspace_id, lock=True)  # one check of a workspace at a time
    hour = last_complete_hour(now)
    # A rotated key's history is its successor's: the new key is the same workload under a new
    # secret, and judged from nothing it would look like a spike the hour after every rotation.
    newest = lineage(s, ws.id)
    muted = {newest(k) for k in muted_keys(s, ws.id, now)}
    rows = [(at, newest(key_id), project_id, amount) for at, key_id, project_id, amount in hourly(s, ws.id, rule.since(hour), hour + HOUR)]
    series = scoped(rows, muted)
    spell = _in_spell(s, ws.id, hour)
    announced = []
    for spike in find_spikes(series, hour, rule, muted):
        if (spike.scope, spike.scope_id) in spell:
            continue
        if not _record(s, ws.id, spike):
            continue
        announced.append(spike)
        f = spike.finding
        outbox.emit(
            s,
            ActionKind.POST_SPIKE,
            workspace_id=ws.id,
            payload={
                "scope": spike.scope.value, "scope_id": spike.scope_id, "key_id": spike.key_id, "hour": f.hour.isoformat(), "window": f.window,
                "spent_hour": f.spent_hour, "usual_hour": f.usual_hour, "spent_day": f.spent_day, "usual_day": f.usual_day, "multiple": rule.multiple,
            },
        )  # fmt: skip
        audit.record(
            s, workspace_id=ws.id, actor="system:clock", action="spike.alert", resource=f"{spike.scope.value}:{spike.scope_id}",
            details={"hour": f.hour.isoformat(), "window": f.window, "spent_micros": f.spent, "usual_micros": f.usual, "key_id": spike.key_id},
        )  # fmt: skip
    return announced


def _record(s: Session, workspace_id: int, spike: Spike) -> bool:
    """The spike's row (and its keys' that spiked with it); False when this hour was announced already."""
    def row(scope: Scope, scope_id: int, f: Finding, with_project: int | None = None) -> dict:
        return {"scope": scope, "scope_id": scope_id, "workspace_id": workspace_id, "hour": f.hour, "window": f.window, "spent_micros": f.spent, "usual_micros": f.usual, "with_project_id": with_project}

    insert = dialect_insert(s)
    fresh = s.execute(insert(SpikeAlert).on_conflict_do_nothing().returning(SpikeAlert.scope_id), [row(spike.scope, spike.scope_id, spike.finding)]).all()
    if not fresh:
        return False
    if spike.also_keys:
        s.execute(insert(SpikeAlert).on_conflict_do_nothing(), [row(Scope.KEY, k, f, spike.scope_id) for k, f in spike.also_keys])
    return True


#: the mutes the alert's buttons offer, in hours
MUTE_HOURS = (24, 7 * 24)


@dataclass(frozen=True)
class Muted:
    key_id: int
    key_name: str
    until: datetime


def mute_key(s: Session, actor: Actor, key_id: int, hours: int, now: datetime | None = None) -> Muted:
    """An Admin silences a key's spike alerts for ``hours`` (and its share of its project's check)."""
    if hours not in MUTE_HOURS:
        raise InvalidInput("Spike alerts can be muted for 24 hours or 7 days.")
    key = s.get(ApiKey, key_id)
    if key is None:
        raise NotFound("That key is not known here any more: there is nothing to mute.")
    ws = load_workspace(s, key.workspace_id, lock=True)
    member = authorize(s, actor, ws, Permission.MUTE_SPIKES, resource=f"key:{key.id}", attempted="spike.mute")
    now = now or utcnow()
    until = now + timedelta(hours=hours)
    s.add(SpikeMute(key_id=key.id, until=until, by_member_id=member.id if member else None, created_at=now))
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="spike.mute", resource=f"key:{key.id}", details={"key": key.name, "hours": hours, "until": until.isoformat()})
    return Muted(key.id, key.name, until)
