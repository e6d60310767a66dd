"""What a monthly statement is built from (store/statements.py has the rules): the month's usage
events in one grouped scan, the credit ledger around the month, and the limits in force."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import Session

from store.errors import InvalidInput
from store.models import ApiKey, CreditEntry, Member, Project, UsageEvent, Workspace
from store.spend_series import NO_MODEL, NO_PROJECT
from store.types import Period

UTC = timezone.utc
_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")


def parse_month(text: str) -> date:
    """``2026-11`` → 1 November 2026."""
    m = _MONTH.match(text or "")
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 2000:
        raise InvalidInput(f"“{(text or '')[:20]}” is not a month. Write it as year and month, like 2026-11.")
    return date(int(m.group(1)), int(m.group(2)), 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    return start, (start + timedelta(days=32)).replace(day=1)


def month_name(month: date) -> str:
    return f"{month:%B %Y}"


def previous_month(month: date) -> date:
    return (month - timedelta(days=1)).replace(day=1)


def last_month(now: datetime) -> date:
    """The month that ended most recently: what the job on the 1st closes."""
    return previous_month(now.astimezone(UTC).date().replace(day=1))


@dataclass(frozen=True)
class Line:
    """Spend of one project, key and model: the month's own (``spend``) or a month already closed (``correction``)."""

    kind: str  # spend | correction
    project: str
    member: str
    key: str
    model: str
    amount_micros: int
    events: int
    month: date | None = None  # for a correction: the month the spend happened in


@dataclass(frozen=True)
class Topup:
    at: datetime
    member: str | None  # who added it (Slack user or e-mail); None: an approved request or the operator
    note: str | None
    amount_micros: int
    balance_after_micros: int


def _day(column, pg: bool):
    # The day as each database names it; both are turned into a date below.
    return func.date_trunc("day", column) if pg else func.date(column)


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def usage(s: Session, ws: Workspace, start: datetime, end: datetime, closed_at: datetime, before_closed_at: datetime | None) -> tuple[list[Line], dict[str, list[int]]]:
    """One grouped scan of the month's events (and the late ones this statement corrects)."""
    e = UsageEvent
    own = and_(e.occurred_at >= start, e.occurred_at < end, e.ingested_at <= closed_at)
    late = and_(e.occurred_at < start, e.ingested_at > before_closed_at, e.ingested_at <= closed_at) if before_closed_at is not None else false()
    day = _day(e.occurred_at, s.get_bind().dialect.name == "postgresql")
    model = func.coalesce(e.model, "")
    stmt = (
        select(day, e.project_id, e.key_id, model, func.sum(e.amount_micros), func.count())
        .where(e.workspace_id == ws.id, or_(own, late))
        .group_by(day, e.project_id, e.key_id, model)
    )
    rows = [(_as_date(d), project_id, key_id, m, int(amount or 0), int(n)) for d, project_id, key_id, m, amount, n in s.execute(stmt)]
    projects = dict(s.execute(select(Project.id, Project.slug).where(Project.id.in_({r[1] for r in rows if r[1] is not None}))).all()) if rows else {}
    keys = {
        key_id: (f"{name} ({prefix}…)", owner or "unknown")
        for key_id, name, prefix, owner in s.execute(
            select(ApiKey.id, ApiKey.name, ApiKey.prefix, func.coalesce(Member.slack_user_id, Member.email))
            .join(Member, Member.id == ApiKey.member_id)
            .where(ApiKey.id.in_({r[2] for r in rows}))
        )
    } if rows else {}
    first = start.date()
    grouped: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    daily: dict[str, list[int]] = {}
    for d, project_id, key_id, m, amount, n in rows:
        project = projects.get(project_id, NO_PROJECT) if project_id is not None else NO_PROJECT
        key, member = keys.get(key_id, (f"key {key_id}", "unknown"))
        correction = d < first
        line = ("correction" if correction else "spend", project, member, key, m or NO_MODEL, d.replace(day=1) if correction else None)
        grouped[line][0] += amount
        grouped[line][1] += n
        if not correction:
            daily.setdefault(project, [0] * (end.date() - first).days)[(d - first).days] += amount
    lines = [Line(kind, project, member, key, m, a, n, month) for (kind, project, member, key, m, month), (a, n) in grouped.items()]
    lines.sort(key=lambda r: (r.kind != "spend", r.month or first, -r.amount_micros, r.project, r.member, r.key, r.model))
    return lines, daily


def balance_before(s: Session, workspace_id: int, at: datetime) -> int | None:
    return s.scalar(
        select(CreditEntry.balance_after_micros).where(CreditEntry.workspace_id == workspace_id, CreditEntry.created_at < at).order_by(CreditEntry.created_at.desc(), CreditEntry.id.desc()).limit(1)
    )


def ledger(s: Session, workspace_id: int, start: datetime, end: datetime) -> tuple[list[Topup], list[tuple[date, int, int]]]:
    c = CreditEntry
    in_month = (c.workspace_id == workspace_id, c.created_at >= start, c.created_at < end)
    topups = [
        Topup(at, who, note, amount, after)
        for at, who, note, amount, after in s.execute(
            select(c.created_at, func.coalesce(Member.slack_user_id, Member.email), c.note, c.amount_micros, c.balance_after_micros)
            .outerjoin(Member, Member.id == c.member_id)
            .where(*in_month, c.kind == "topup")
            .order_by(c.created_at, c.id)
        )
    ]
    # A funded pool is debited once per ingest batch: a busy month has many entries, shown a day at a time.
    day = _day(c.created_at, s.get_bind().dialect.name == "postgresql")
    debits = sorted((_as_date(d), int(amount or 0), int(n)) for d, amount, n in s.execute(select(day, func.sum(c.amount_micros), func.count()).where(*in_month, c.kind == "spend").group_by(day)))
    return topups, debits


def limits_in_force(s: Session, ws: Workspace) -> list[tuple[str, int, str]]:
    """The cap and the project budgets as they stand: (label, micro-dollars, period)."""
    limits = [("Cap", ws.cap_micros, ws.cap_period.value)] if ws.cap_micros is not None else []
    for slug, budget, period in s.execute(select(Project.slug, Project.budget_micros, Project.budget_period).where(Project.workspace_id == ws.id, Project.budget_micros.is_not(None)).order_by(Project.slug)):
        limits.append((f"Budget {slug}", budget, Period(period).value))
    return limits
