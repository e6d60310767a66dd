"""The monthly statement: what a workspace's pool held, took in and paid out in a month, and what was spent.

The rules:

- A statement for month M **closes** at an instant, ``closed_at``: when it is first posted
  (the monthly job on the 1st, or ``purser statement --post``). The row in ``statements``
  keeps that instant and the totals it showed. Statements close in month order: closing M
  first closes any month between the workspace's last closed statement and M, at the same
  instant. Only a month that is over closes.
- **Spend of M** = usage events with ``occurred_at`` in M and ``ingested_at <= closed_at(M)``.
  An event of M+1 ingested before M closed is M+1's own spend (no lower bound on
  ``ingested_at`` for a month's own spend).
- **Corrections in M** = events with ``occurred_at`` before M's start and ``ingested_at`` in
  (closed_at(M-1), closed_at(M)]: spend of a month that had already closed when it came in.
  A workspace's first statement has none; events recorded before it for months before it
  are in no statement (the record starts with the first statement).
- So every event ingested after a workspace's first statement is in exactly one statement,
  and a posted statement is never rewritten: asking again for a closed month rebuilds it
  from the same rule with the stored ``closed_at`` and gives the same figures (the stored
  totals are there to check that, and a rebuild that disagrees says so).
- **The pool**: opening = the balance after the last ledger entry before M's start (none:
  not funded), closing = the balance after the last entry before M's end; top-ups and
  debits are the month's ``topup`` and ``spend`` entries. opening + top-ups − debits must
  equal closing; the statement says so plainly when it does not. Debits differ from spend:
  the pool is debited when spend is ingested (late spend too) and only once funded.
- A month not yet over, or over but not yet closed, can be previewed: its ``closed_at`` is
  now, and it is marked "preview, not closed".
- Usage events are refunded by nothing in Purser (amounts are never negative); what a
  statement corrects is late spend.

The statement reads ``usage_events`` for its month in one grouped scan: the hourly rows
(spend_hours) cannot tell when an event was ingested, and a scan once a month per
workspace is cheap next to an index that every ingest would have to move.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.audit import Verification, verify_chain
from store.errors import Conflict, InvalidInput
from store.models import AuditEvent, Member, Workspace
from store.models_statements import StatementRow
from store.permissions import Actor, Permission, authorize, load_workspace
from store.statement_reads import UTC, Line, Topup, balance_before, last_month, ledger, limits_in_force, month_bounds, month_name, parse_month, previous_month, usage
from store.types import ActionKind, MemberStatus, Role, WorkspaceStatus, utcnow

__all__ = ["Line", "Statement", "Topup", "build_statement", "close_statement", "due_statements", "month_name", "parse_month", "recipients", "send_statement", "view_statement"]

@dataclass(frozen=True)
class Statement:
    workspace_id: int
    workspace: str
    month: date
    closed_at: datetime
    closed: bool  # False: a preview, worked out as if it closed now
    over: bool  # the month has ended
    lines: list[Line]
    daily: dict[str, list[int]]  # the month's own spend per project and day, first day to ``last_day``
    last_day: date
    opening_micros: int | None  # None: the pool had not been funded
    closing_micros: int | None
    topups: list[Topup]
    debits: list[tuple[date, int, int]]  # (day, micro-dollars debited (negative), ledger entries)
    limits: list[tuple[str, int, str]]  # (label, micro-dollars, period) in force
    audit_events: int  # the month's audit events
    chain: Verification  # the whole chain, checked when the statement was built
    posted: dict[str, int | None] = field(default_factory=dict)  # the totals it showed when it closed

    @property
    def start(self) -> datetime:
        return month_bounds(self.month)[0]

    @property
    def end(self) -> datetime:
        return month_bounds(self.month)[1]

    def of(self, kind: str) -> list[Line]:
        return [line for line in self.lines if line.kind == kind]

    @property
    def spend_micros(self) -> int:
        return sum(line.amount_micros for line in self.of("spend"))

    @property
    def spend_events(self) -> int:
        return sum(line.events for line in self.of("spend"))

    @property
    def corrections_micros(self) -> int:
        return sum(line.amount_micros for line in self.of("correction"))

    @property
    def correction_events(self) -> int:
        return sum(line.events for line in self.of("correction"))

    @property
    def topups_micros(self) -> int:
        return sum(t.amount_micros for t in self.topups)

    @property
    def debits_micros(self) -> int:
        return sum(amount for _, amount, _ in self.debits)

    @property
    def balances(self) -> bool:
        """opening + top-ups − debits = closing (an unfunded pool counts as 0)."""
        return (self.opening_micros or 0) + self.topups_micros + self.debits_micros == (self.closing_micros or 0)

    def totals(self) -> dict[str, int | None]:
        return {
            "spend_micros": self.spend_micros,
            "spend_events": self.spend_events,
            "corrections_micros": self.corrections_micros,
            "correction_events": self.correction_events,
            "opening_micros": self.opening_micros,
            "topups_micros": self.topups_micros,
            "debits_micros": self.debits_micros,
            "closing_micros": self.closing_micros,
            "audit_events": self.audit_events,
        }

    @property
    def differs_from_posted(self) -> list[str]:
        """The totals a rebuild no longer agrees with (a changed or deleted usage event, ledger entry or audit event)."""
        now = self.totals()
        return [name for name, shown in self.posted.items() if now.get(name) != shown]

    def split(self, attribute: str, kind: str = "spend") -> list[tuple[str, int, int]]:
        """(label, micro-dollars, events) by ``project``, ``member``, ``key`` or ``model``, largest first."""
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for line in self.of(kind):
            sums[getattr(line, attribute)][0] += line.amount_micros
            sums[getattr(line, attribute)][1] += line.events
        return sorted(((label, a, n) for label, (a, n) in sums.items()), key=lambda r: (-r[1], r[0]))


def _stored(s: Session, workspace_id: int, month: date) -> StatementRow | None:
    return s.get(StatementRow, (workspace_id, month))


def _first_closed(s: Session, workspace_id: int) -> date | None:
    return s.scalar(select(func.min(StatementRow.month)).where(StatementRow.workspace_id == workspace_id))


def _check_month(s: Session, ws: Workspace, month: date, now: datetime) -> None:
    start, _ = month_bounds(month)
    if start > now:
        raise InvalidInput(f"{month_name(month)} has not begun yet, so it has no statement.")
    created = ws.created_at.date().replace(day=1)
    if month < created:
        raise InvalidInput(f"`{ws.slug}` was created in {month_name(created)}; there is no statement before that.")
    first = _first_closed(s, ws.id)
    if first is not None and month < first:
        raise InvalidInput(f"`{ws.slug}`'s statements start with {month_name(first)}, the first one closed; spend before it is in no statement.")


def build_statement(s: Session, workspace_id: int, month: date, now: datetime | None = None) -> Statement:
    """The statement of ``month`` by the rules above: as closed, or (not closed yet) as if it closed ``now``."""
    now = now or utcnow()
    ws = s.get(Workspace, workspace_id)
    start, end = month_bounds(month)
    row = _stored(s, workspace_id, month)
    closed_at = row.closed_at if row is not None else now
    before = _stored(s, workspace_id, previous_month(month))
    lines, daily = usage(s, ws, start, end, closed_at, before.closed_at if before is not None else None)
    last_day = (end - timedelta(days=1)).date() if end <= closed_at else closed_at.date()
    width = (last_day - start.date()).days + 1
    daily = {label: values[:width] for label, values in daily.items()}
    topups, debits = ledger(s, workspace_id, start, end)
    month_events = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.workspace_id == workspace_id, AuditEvent.at >= start, AuditEvent.at < end))
    return Statement(
        workspace_id=workspace_id,
        workspace=ws.slug,
        month=month,
        closed_at=closed_at,
        closed=row is not None,
        over=end <= now,
        lines=lines,
        daily=daily,
        last_day=last_day,
        opening_micros=balance_before(s, workspace_id, start),
        closing_micros=balance_before(s, workspace_id, end),
        topups=topups,
        debits=debits,
        limits=[tuple(limit) for limit in row.limits] if row is not None else limits_in_force(s, ws),
        audit_events=int(month_events or 0),
        chain=verify_chain(s, workspace_id),
        posted=_posted(row) if row is not None else {},
    )


_POSTED = ("spend_micros", "spend_events", "corrections_micros", "correction_events", "opening_micros", "topups_micros", "debits_micros", "closing_micros", "audit_events")


def _posted(row: StatementRow) -> dict[str, int | None]:
    return {name: getattr(row, name) for name in _POSTED}


def view_statement(s: Session, actor: Actor, workspace_id: int, month: date | None = None, now: datetime | None = None) -> Statement:
    """A Billing Manager's or an Admin's look at a month (None: this one so far): as closed, or a preview."""
    now = now or utcnow()
    month = month or now.astimezone(UTC).date().replace(day=1)
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.MANAGE_CREDIT, resource=f"workspace:{ws.slug}", attempted="statement.view")
    _check_month(s, ws, month, now)
    return build_statement(s, workspace_id, month, now)


def send_statement(s: Session, actor: Actor, workspace_id: int, month: date | None = None, now: datetime | None = None) -> Statement:
    """``view_statement``, and the same statement (chart and CSV with it) to the asker's DM."""
    now = now or utcnow()
    statement = view_statement(s, actor, workspace_id, month, now)
    month = statement.month
    # As it stood when asked: a retry of the DM shows the same figures, even for a preview.
    payload = {"month": f"{month:%Y-%m}", "as_of": now.isoformat(), "to": [actor.slack_user_id], "ref": f"statement:{workspace_id}:{month:%Y-%m}:ask:{uuid.uuid4().hex[:12]}"}
    outbox.emit(s, ActionKind.POST_STATEMENT, workspace_id=workspace_id, payload=payload)
    return statement


def close_statement(s: Session, actor: Actor, workspace_id: int, month: date, now: datetime | None = None) -> Statement:
    """Close ``month`` (and any month before it since the last one closed) and have it posted.

    Closing an already closed month closes nothing and posts it again under the same refs:
    the messages are edited in place and the files not uploaded twice.
    """
    now = now or utcnow()
    # Locked as ingest locks it: a batch already recording this workspace's spend commits first.
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.MANAGE_CREDIT, resource=f"workspace:{ws.slug}", attempted="statement.close")
    if month_bounds(month)[1] > now:
        raise InvalidInput(f"{month_name(month)} is not over yet, so it cannot close; it can be previewed, and it closes on the 1st of the next month.")
    if ws.status is WorkspaceStatus.DELETED:
        raise Conflict(f"`{ws.slug}` was deleted; its statements are kept, and no new one closes.")
    last = s.scalar(select(func.max(StatementRow.month)).where(StatementRow.workspace_id == workspace_id))
    if last is not None and month < last and _stored(s, workspace_id, month) is None:
        raise InvalidInput(f"`{ws.slug}`'s statements start with {month_name(_first_closed(s, workspace_id))}; {month_name(month)} came before and closes no more.")
    if last is None:
        _check_month(s, ws, month, now)
    todo, m = [], month
    while last is not None and m > last:
        todo.append(m)
        m = previous_month(m)
    for m in reversed(todo if last is not None else [month]):
        statement = build_statement(s, workspace_id, m, now)
        s.add(StatementRow(workspace_id=workspace_id, month=m, closed_at=now, closed_by=actor.label[:80], limits=[list(limit) for limit in statement.limits], **statement.totals()))
        s.flush()
        audit.record(s, workspace_id=workspace_id, actor=actor.label, action="statement.close", resource=f"workspace:{ws.slug}", details={"month": f"{m:%Y-%m}", "closed_at": now.isoformat(), **statement.totals()})
        if m != month:
            outbox.emit(s, ActionKind.POST_STATEMENT, workspace_id=workspace_id, payload={"month": f"{m:%Y-%m}"})
    outbox.emit(s, ActionKind.POST_STATEMENT, workspace_id=workspace_id, payload={"month": f"{month:%Y-%m}"})
    return build_statement(s, workspace_id, month, now)


def due_statements(s: Session, now: datetime | None = None) -> tuple[date, list[int]]:
    """Last month, and the workspaces (not deleted, made before it ended) whose statement of it is not closed."""
    now = now or utcnow()
    month = last_month(now)
    _, end = month_bounds(month)
    closed = select(StatementRow.workspace_id).where(StatementRow.month == month)
    ids = s.scalars(select(Workspace.id).where(Workspace.status != WorkspaceStatus.DELETED, Workspace.created_at < end, Workspace.id.not_in(closed)).order_by(Workspace.id))
    return month, list(ids)


def recipients(s: Session, workspace_id: int) -> list[str]:
    """Who gets the statement: the active Admins and Billing Managers that Slack knows."""
    return list(
        s.scalars(
            select(Member.slack_user_id)
            .where(Member.workspace_id == workspace_id, Member.status == MemberStatus.ACTIVE, Member.role.in_((Role.ADMIN, Role.BILLING)), Member.slack_user_id.is_not(None))
            .order_by(Member.role, Member.id)
        )
    )
