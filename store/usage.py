"""Usage ingest: spend events in, running totals moved, thresholds and pauses decided — one transaction.

Ingest is idempotent by (workspace, external id): re-sending a batch adds nothing.
Totals are upserted with ``amount = amount + delta`` and the new value returned, so
each batch learns the exact total before and after its own spend, and exactly one
batch sees a threshold being crossed.

Which totals an event moves: its project's and its workspace's for every tracked
period (a budget or a cap may change period at any time, and the forecast reads the
daily ones), and its key's for the key's limit period only. A key's limit and period
are fixed when it is made (rotation copies them to the new key), and only that
period's total is ever read for a key, so the other three would be written and never
read: a batch of events spread over many keys would move three times the rows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, NamedTuple, Sequence

from sqlalchemy import BigInteger, String, bindparam, case, cast, func, select, text, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from store import outbox
from store.errors import InvalidInput, PermissionDenied
from store.models import AlertSent, ApiKey, CreditEntry, Member, Project, SpendTotal, UsageEvent, Workspace
from store.money import MAX_MICROS, format_money
from store.periods import EPOCH, TRACKED, next_period_start, period_start
from store.permissions import Actor, Permission, authorize, load_workspace, membership
from store.standing import pause_project_row, reconcile_project, reconcile_workspace, workspace_hold
from store.totals import spent
from store.types import ActionKind, BudgetKind, Period, ProjectStatus, Scope, UTCDateTime, WorkspaceStatus, utcnow

#: events stamped further in the future than this are refused: a clock is wrong somewhere
FUTURE_SKEW = timedelta(minutes=5)
MAX_BATCH = 10_000

# plain strings: an enum member's .value costs a descriptor call, and ingest takes thousands a batch
_KEY, _PROJECT, _WORKSPACE = Scope.KEY.value, Scope.PROJECT.value, Scope.WORKSPACE.value
_PERIODS = tuple(period.value for period in TRACKED)


@dataclass(frozen=True)
class UsageIn:
    external_id: str
    key_id: int
    amount_micros: int
    occurred_at: datetime
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class Crossing:
    """A threshold of a budget reached for the first time this period."""

    workspace_id: int
    kind: BudgetKind
    budget_id: int
    name: str
    threshold: int
    spent_micros: int
    limit_micros: int
    period: Period

    def describe(self) -> str:
        what = {BudgetKind.PROJECT: f"project `{self.name}`", BudgetKind.CAP: f"the `{self.name}` spending cap", BudgetKind.CREDIT: "the credit pool"}[self.kind]
        return f"{what} has used {self.threshold}% ({format_money(self.spent_micros)} of {format_money(self.limit_micros)})"


@dataclass
class IngestResult:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    crossings: list[Crossing] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)
    #: one (verdict, reason) per event, in the order sent: two events of a batch may share an
    #: external_id, and only the first of them is the one recorded
    verdicts: list[tuple[str, str | None]] = field(default_factory=list)

    def outcome(self, external_id: str) -> str:
        if external_id in self.refused:
            return "refused"
        return "duplicate" if external_id in self.duplicates else "accepted"


class _Key(NamedTuple):
    workspace_id: int
    project_id: int | None
    limit_micros: int | None
    limit_period: str  # a Period's value


class _Row(NamedTuple):
    """An event that passed the checks, as it is stored."""

    external_id: str
    workspace_id: int
    project_id: int | None
    key_id: int
    amount_micros: int
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    occurred_at: datetime  # in UTC
    key_period: str  # the period of the key's own running total


#: a running total of the current period: (scope, scope id, period)
TotalKey = tuple[str, int, str]
#: the totals a limit, budget or cap is checked against that a batch moved: the amount
#: after the batch, and the batch's part of it
Moved = dict[TotalKey, tuple[int, int]]


def _dialect_insert(s: Session):
    return postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert


def ingest_usage(s: Session, events: Sequence[UsageIn], now: datetime | None = None) -> IngestResult:
    """Record spend. Not one audit event per usage event; pauses it causes are audited."""
    now = now or utcnow()
    result = IngestResult()
    if len(events) > MAX_BATCH:
        raise InvalidInput(f"Send at most {MAX_BATCH} usage events at a time; this batch has {len(events)}.")
    pg = s.get_bind().dialect.name == "postgresql"
    keys = _keys(s, {e.key_id for e in events}, pg)
    result.verdicts = [("accepted", None)] * len(events)
    rows, origin = _admit(events, keys, now, result)
    if not rows:
        return result
    # Lock the workspace rows first, in id order, as every administrative operation does.
    # Ingest then queues behind an admin changing a budget, a cap or the thresholds (and
    # they behind it), so the budgets read next stay true until this commits; and the
    # project and workspace rows a pause below locks are taken in the admins' order.
    # Batches of one workspace queue here; they would queue on its totals anyway.
    thresholds = {
        w: list(t or [])
        for w, t in s.execute(
            select(Workspace.id, Workspace.alert_thresholds).where(Workspace.id.in_(sorted({r.workspace_id for r in rows}))).order_by(Workspace.id).with_for_update(key_share=True)
        )
    }
    budgeted = _budgeted_projects(s, {r.project_id for r in rows if r.project_id is not None}, pg)
    duplicate, after = (_record_pg if pg else _record_sqlite)(s, rows, now)
    accepted = []
    spent: dict[int, int] = defaultdict(int)
    for i, r in enumerate(rows):
        if i in duplicate:
            result.duplicates.append(r.external_id)
            result.verdicts[origin[i]] = ("duplicate", None)
        else:
            result.accepted.append(r.external_id)
            accepted.append(r)
            spent[r.workspace_id] += r.amount_micros
    if not any(spent.values()):
        return result
    moved = _moved(accepted, keys, _wanted(keys, accepted, budgeted), after, now)
    _check_key_limits(s, keys, moved)
    _check_projects(s, budgeted, moved, thresholds, now, result)
    for workspace_id in sorted(spent):
        if spent[workspace_id]:
            _check_workspace(s, workspace_id, spent[workspace_id], moved, now, result)
    return result


def _ids_in(column, ids: list[int], pg: bool):
    # On PostgreSQL one parameter, since an IN list of a batch's worth of ids is a new
    # statement text each time, for the driver to parse again. A JSON array, as the
    # events travel (below), and unnested: with "= ANY(array)", once the driver prepares
    # the statement, the server's generic plan compares every row with every element.
    return column.in_(select(cast(func.jsonb_array_elements_text(cast(bindparam(None, json.dumps(ids), type_=String), JSONB)), BigInteger))) if pg else column.in_(ids)


def _keys(s: Session, key_ids: Iterable[int], pg: bool) -> dict[int, _Key]:
    ids = sorted(k for k in key_ids if isinstance(k, int))
    out: dict[int, _Key] = {}
    for chunk in (ids[i : i + 5000] for i in range(0, len(ids), 5000)):
        # On the table, not the ORM entity: plain rows, not the ORM's (a thousand a batch).
        # The period as stored, a Period's value: no enum to make for each key.
        c = ApiKey.__table__.c
        stmt = select(c.id, c.workspace_id, c.project_id, c.limit_micros, type_coerce(c.limit_period, String)).where(_ids_in(c.id, chunk, pg))
        out.update({row[0]: _Key._make(row[1:]) for row in s.execute(stmt)})
    return out


def _budgeted_projects(s: Session, project_ids: set[int], pg: bool) -> dict[int, Any]:
    ids = sorted(project_ids)
    out = {}
    for chunk in (ids[i : i + 5000] for i in range(0, len(ids), 5000)):
        stmt = select(Project.id, Project.workspace_id, Project.slug, Project.budget_micros, Project.budget_period, Project.status)
        out.update({p.id: p for p in s.execute(stmt.where(_ids_in(Project.id, chunk, pg), Project.budget_micros.is_not(None)))})
    return out


def _admit(events: Sequence[UsageIn], keys: dict[int, _Key], now: datetime, result: IngestResult) -> tuple[list[_Row], list[int]]:
    """The events to record, each once, and where each stood in the batch; refusals and repeats go to ``result``."""
    latest = now + FUTURE_SKEW
    utc = timezone.utc
    rows: list[_Row] = []
    origin: list[int] = []
    seen: set[tuple[int, str]] = set()
    for i, e in enumerate(events):
        reason = _refusal(e, keys, latest)
        if reason:
            result.refused[e.external_id] = reason
            result.verdicts[i] = ("refused", reason)
            continue
        key = keys[e.key_id]
        if (key.workspace_id, e.external_id) in seen:  # the idempotency key: (workspace, external_id)
            result.duplicates.append(e.external_id)
            result.verdicts[i] = ("duplicate", None)
            continue
        seen.add((key.workspace_id, e.external_id))
        origin.append(i)
        model = (e.model or None) and e.model[:120]
        rows.append(
            _Row(e.external_id, key.workspace_id, key.project_id, e.key_id, e.amount_micros, model, e.prompt_tokens, e.completion_tokens, e.occurred_at.astimezone(utc), key.limit_period)
        )
    return rows, origin


def _refusal(e: UsageIn, keys: dict[int, _Key], latest: datetime) -> str | None:
    if not e.external_id or len(e.external_id) > 200:
        return "external_id must be 1–200 characters"
    if e.key_id not in keys:
        return "unknown key"
    amount = e.amount_micros
    if (type(amount) is not int and (not isinstance(amount, int) or isinstance(amount, bool))) or not 0 <= amount <= MAX_MICROS:
        return "amount must be a whole number of micro-dollars from 0 to $1,000,000,000"
    if e.occurred_at.tzinfo is None:
        return "occurred_at must carry a time zone"
    if e.occurred_at > latest:
        return "occurred_at is in the future"
    for tokens in (e.prompt_tokens, e.completion_tokens):
        if tokens is not None and not (isinstance(tokens, int) and 0 <= tokens < 2**31):
            return "token counts must be whole numbers from 0"
    return None


def _wanted(keys: dict[int, _Key], rows: list[_Row], budgeted: dict[int, Any]) -> set[TotalKey]:
    """The totals the checks read: limited keys', budgeted projects', and the workspaces' (the cap's period is read later)."""
    wanted = {(_KEY, r.key_id, r.key_period) for r in rows if keys[r.key_id].limit_micros is not None}
    wanted.update((_PROJECT, p.id, Period(p.budget_period).value) for p in budgeted.values())
    wanted.update((_WORKSPACE, w, period) for w in {r.workspace_id for r in rows} for period in _PERIODS)
    return wanted


def _moved(accepted: list[_Row], keys: dict[int, _Key], wanted: set[TotalKey], after: dict[TotalKey, int], now: datetime) -> Moved:
    """The wanted totals this batch moved, with the amount after and the batch's own part of it."""
    parts = {k: 0 for k in wanted if k in after}
    if not parts:
        return {}
    # this batch's spend by UTC day, per key, then per project and workspace
    by_key: dict[tuple[int, date], int] = defaultdict(int)
    for r in accepted:
        by_key[(r.key_id, r.occurred_at.date())] += r.amount_micros  # occurred_at is in UTC
    by_scope: dict[tuple[str, int, date], int] = defaultdict(int)
    for (key_id, day), amount in by_key.items():
        key = keys[key_id]
        by_scope[(_KEY, key_id, day)] += amount
        by_scope[(_WORKSPACE, key.workspace_id, day)] += amount
        if key.project_id is not None:
            by_scope[(_PROJECT, key.project_id, day)] += amount
    # each current period as the UTC days it spans; a lifetime never ends
    days = {}
    for period, name in zip(TRACKED, _PERIODS):
        end = next_period_start(period, now)
        days[name] = (period_start(period, now).date(), end.date() if end else date.max)
    periods_of: dict[tuple[str, int], list[str]] = defaultdict(list)
    for scope, scope_id, period in parts:
        periods_of[(scope, scope_id)].append(period)
    for (scope, scope_id, day), amount in by_scope.items():
        for period in periods_of.get((scope, scope_id), ()):
            first, end = days[period]
            if first <= day < end:
                parts[(scope, scope_id, period)] += amount
    return {k: (after[k], part) for k, part in parts.items()}


# The start of each tracked period for each day a batch's events fall on: the same rule
# as store.periods.period_start, on timestamps stored as UTC (date_trunc('week') starts
# weeks on Monday, as ISO does). Worked out once a day, not once an event.
_TRACKED_SQL = ", ".join(f"('{p}')" for p in _PERIODS)
_STARTS_SQL = (
    f"SELECT d.day, t.period, CASE t.period WHEN '{Period.DAILY.value}' THEN d.day WHEN '{Period.WEEKLY.value}' THEN date_trunc('week', d.day) "
    f"WHEN '{Period.MONTHLY.value}' THEN date_trunc('month', d.day) ELSE CAST(:epoch AS timestamp) END AS period_start "
    f"FROM (SELECT DISTINCT day FROM daily) AS d CROSS JOIN (VALUES {_TRACKED_SQL}) AS t(period)"
)

# On PostgreSQL one statement records a batch: it inserts the events (a duplicate's
# insert does nothing), sums the new ones by key and day, adds those to the totals they
# move, and answers with the duplicates' positions and the amounts after of the totals
# of current periods it moved. (Each total's part of the batch is summed by _moved in
# Python: joining it back here on estimates of a few rows each, the planner chose a
# nested loop that compared every total with every other, a hundred milliseconds.)
# The events travel as one JSON array: the driver quotes one string in C, where an
# array parameter per column costs a Python step and a regular expression for every
# element, several milliseconds a batch. Events go in the order given; totals in key
# order, so concurrent batches lock rows in one order.
_PG_RECORD = text(
    f"""
    WITH e AS (
        SELECT j.n, j.r->>0 AS external_id, CAST(j.r->>1 AS bigint) AS workspace_id, CAST(j.r->>2 AS bigint) AS project_id,
               CAST(j.r->>3 AS bigint) AS key_id, CAST(j.r->>4 AS bigint) AS amount_micros, j.r->>5 AS model,
               CAST(j.r->>6 AS integer) AS prompt_tokens, CAST(j.r->>7 AS integer) AS completion_tokens,
               CAST(j.r->>8 AS timestamptz) AT TIME ZONE 'UTC' AS occurred_at, j.r->>9 AS key_period
        FROM jsonb_array_elements(CAST(:events AS jsonb)) WITH ORDINALITY AS j(r, n)
    ), inserted AS (
        INSERT INTO usage_events (external_id, workspace_id, project_id, key_id, amount_micros, model, prompt_tokens, completion_tokens, occurred_at, ingested_at)
        SELECT external_id, workspace_id, project_id, key_id, amount_micros, model, prompt_tokens, completion_tokens, occurred_at, :ingested_at
        FROM e ORDER BY n
        ON CONFLICT (workspace_id, external_id) DO NOTHING
        RETURNING workspace_id, external_id
    ), daily AS (
        SELECT e.key_id, e.key_period, e.project_id, e.workspace_id, date_trunc('day', e.occurred_at) AS day, sum(e.amount_micros) AS amount
        FROM e JOIN inserted i ON i.workspace_id = e.workspace_id AND i.external_id = e.external_id
        WHERE e.amount_micros <> 0
        GROUP BY 1, 2, 3, 4, 5
    ), starts AS (
        {_STARTS_SQL}
    ), delta AS (
        SELECT '{_KEY}' AS scope, key_id AS scope_id, key_period AS period, s.period_start, CAST(sum(amount) AS bigint) AS amount
        FROM daily JOIN starts AS s ON s.day = daily.day AND s.period = daily.key_period GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT '{_PROJECT}', project_id, s.period, s.period_start, CAST(sum(amount) AS bigint)
        FROM (SELECT project_id, day, sum(amount) AS amount FROM daily WHERE project_id IS NOT NULL GROUP BY 1, 2) AS p JOIN starts AS s USING (day) GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT '{_WORKSPACE}', workspace_id, s.period, s.period_start, CAST(sum(amount) AS bigint)
        FROM (SELECT workspace_id, day, sum(amount) AS amount FROM daily GROUP BY 1, 2) AS w JOIN starts AS s USING (day) GROUP BY 1, 2, 3, 4
    ), moved AS (
        INSERT INTO spend_totals (scope, scope_id, period, period_start, amount_micros)
        SELECT scope, scope_id, period, period_start, amount FROM delta
        ORDER BY scope, scope_id, period, period_start
        ON CONFLICT (scope, scope_id, period, period_start) DO UPDATE SET amount_micros = spend_totals.amount_micros + excluded.amount_micros
        RETURNING scope, scope_id, period, period_start, amount_micros
    )
    SELECT e.n, NULL AS scope, NULL AS scope_id, NULL AS period, NULL AS after
    FROM e WHERE NOT EXISTS (SELECT FROM inserted i WHERE i.workspace_id = e.workspace_id AND i.external_id = e.external_id)
    UNION ALL
    SELECT NULL, scope, scope_id, period, amount_micros
    FROM moved
    WHERE period_start = CASE period WHEN '{Period.DAILY.value}' THEN :day WHEN '{Period.WEEKLY.value}' THEN :week WHEN '{Period.MONTHLY.value}' THEN :month ELSE :epoch END
    """
).bindparams(*(bindparam(name, type_=UTCDateTime()) for name in ("ingested_at", "day", "week", "month")), bindparam("epoch", EPOCH, type_=UTCDateTime()))


def _record_pg(s: Session, rows: list[_Row], now: datetime) -> tuple[set[int], dict[TotalKey, int]]:
    """Insert the events, move their totals: the positions of the duplicates, and the totals of the current periods moved."""
    events = json.dumps(
        [[r.external_id, r.workspace_id, r.project_id, r.key_id, r.amount_micros, r.model, r.prompt_tokens, r.completion_tokens, r.occurred_at.isoformat(), r.key_period] for r in rows]
    )
    current = {name: period_start(period, now) for name, period in (("day", Period.DAILY), ("week", Period.WEEKLY), ("month", Period.MONTHLY))}
    duplicate: set[int] = set()
    after: dict[TotalKey, int] = {}
    for n, scope, scope_id, period, amount in s.execute(_PG_RECORD, {"events": events, "ingested_at": now, **current}):
        if scope is None:
            duplicate.add(n - 1)  # WITH ORDINALITY counts from 1
        else:
            after[(scope, scope_id, period)] = amount
    return duplicate, after


_EVENT_COLUMNS = ("external_id", "workspace_id", "project_id", "key_id", "amount_micros", "model", "prompt_tokens", "completion_tokens", "occurred_at")


def _record_sqlite(s: Session, rows: list[_Row], now: datetime) -> tuple[set[int], dict[TotalKey, int]]:
    """What _record_pg does, in Python: SQLite takes one writer at a time, so order matters less."""
    stmt = sqlite.insert(UsageEvent).on_conflict_do_nothing(index_elements=["workspace_id", "external_id"]).returning(UsageEvent.workspace_id, UsageEvent.external_id)
    events = [{c: getattr(r, c) for c in _EVENT_COLUMNS} | {"ingested_at": now} for r in rows]
    new = {(w, x) for w, x in s.execute(stmt, events)}
    duplicate = {i for i, r in enumerate(rows) if (r.workspace_id, r.external_id) not in new}
    deltas = _deltas(r for i, r in enumerate(rows) if i not in duplicate)
    upsert = sqlite.insert(SpendTotal)
    upsert = upsert.on_conflict_do_update(
        index_elements=["scope", "scope_id", "period", "period_start"],
        set_={"amount_micros": SpendTotal.amount_micros + upsert.excluded.amount_micros},
    ).returning(SpendTotal.scope, SpendTotal.scope_id, SpendTotal.period, SpendTotal.period_start, SpendTotal.amount_micros)
    current = {period: period_start(period, now) for period in TRACKED}
    ordered = sorted(deltas.items())
    after: dict[TotalKey, int] = {}
    for chunk_start in range(0, len(ordered), 1000):
        chunk = ordered[chunk_start : chunk_start + 1000]
        params = [{"scope": Scope(k[0]), "scope_id": k[1], "period": Period(k[2]), "period_start": k[3], "amount_micros": v} for k, v in chunk]
        for scope, scope_id, period, start, amount in s.execute(upsert, params):
            if start == current[Period(period)]:
                after[(Scope(scope).value, scope_id, Period(period).value)] = amount
    return duplicate, after


def _deltas(accepted: Iterable[_Row]) -> dict[tuple[str, int, str, datetime], int]:
    """What each total gains from these events (the rule _PG_RECORD applies in SQL)."""
    deltas: dict[tuple[str, int, str, datetime], int] = defaultdict(int)
    for r in accepted:
        if r.amount_micros == 0:
            continue
        deltas[(_KEY, r.key_id, r.key_period, period_start(Period(r.key_period), r.occurred_at))] += r.amount_micros
        for period, name in zip(TRACKED, _PERIODS):
            start = period_start(period, r.occurred_at)
            deltas[(_WORKSPACE, r.workspace_id, name, start)] += r.amount_micros
            if r.project_id is not None:
                deltas[(_PROJECT, r.project_id, name, start)] += r.amount_micros
    return deltas


def _check_key_limits(s: Session, keys: dict[int, _Key], moved: Moved) -> None:
    """A key reaching its own limit changes what a gateway hears for it: tell the caches."""
    for (scope, key_id, _), (after, delta) in moved.items():
        if scope == _KEY:
            key = keys[key_id]
            if after - delta < key.limit_micros <= after:
                s.info.setdefault("changed_workspaces", set()).add(key.workspace_id)


def _check_projects(s: Session, budgeted: dict[int, Any], moved: Moved, thresholds: dict[int, list[int]], now: datetime, result: IngestResult) -> None:
    for pid in sorted(budgeted):
        p = budgeted[pid]
        period = Period(p.budget_period)
        k = (_PROJECT, pid, period.value)
        if k not in moved:
            continue  # no spend, or only late events for an earlier period: they count, but alert nobody now
        spent_after, delta = moved[k]
        limit = p.budget_micros
        _crossings(s, result, p.workspace_id, BudgetKind.PROJECT, pid, p.slug, spent_after - delta, spent_after, limit, period, period_start(period, now), thresholds[p.workspace_id])
        if spent_after >= limit and ProjectStatus(p.status) is ProjectStatus.ACTIVE:
            proj = s.scalars(select(Project).where(Project.id == pid).with_for_update()).one()
            ws = s.get(Workspace, p.workspace_id)
            if pause_project_row(s, "system:budget", ws, proj, f"budget of {format_money(limit)} spent", by="budget"):
                result.paused.append(f"project:{p.slug}")


_WORKSPACES = Workspace.__table__.c
# The debit of a workspace's credit pool (only a funded pool is debited; before its first
# top-up, spend is just counted), answering with what the checks read. A statement on
# the table, not the ORM entity: the ORM's bookkeeping for an UPDATE took longer than the
# statement; the one object it might have had to refresh is expired by hand instead.
_DEBIT = (
    update(Workspace.__table__)
    .where(_WORKSPACES.id == bindparam("workspace_id"))
    .values(credit_balance_micros=case((_WORKSPACES.credit_funded, _WORKSPACES.credit_balance_micros - bindparam("spent")), else_=_WORKSPACES.credit_balance_micros))
    .returning(
        _WORKSPACES.credit_balance_micros,
        _WORKSPACES.credit_funded,
        _WORKSPACES.cap_micros,
        _WORKSPACES.cap_period,
        _WORKSPACES.status,
        _WORKSPACES.paused_reason,
        _WORKSPACES.slug,
        _WORKSPACES.alert_thresholds,
    )
)


def _check_workspace(s: Session, workspace_id: int, spent_now: int, moved: Moved, now: datetime, result: IngestResult) -> None:
    # The credit debit is the last row this batch changes, after every total (its lock
    # was taken first of all, in ingest_usage).
    balance, funded, cap, cap_period, status, paused_reason, slug, thresholds = s.execute(_DEBIT, {"workspace_id": workspace_id, "spent": spent_now}).one()
    loaded = s.identity_map.get(s.identity_key(Workspace, workspace_id))  # a project pause above may have loaded it
    if loaded is not None:
        s.expire(loaded, ["credit_balance_micros"])
    cap_spent = 0
    if cap is not None:
        period = Period(cap_period)
        k = (_WORKSPACE, workspace_id, period.value)
        if k in moved:
            cap_spent, delta = moved[k]
            _crossings(s, result, workspace_id, BudgetKind.CAP, workspace_id, slug, cap_spent - delta, cap_spent, cap, period, period_start(period, now), thresholds or [])
        else:  # only late events: this period's spend did not move, but the pool may have
            cap_spent = spent(s, Scope.WORKSPACE, workspace_id, period, now)
    if funded:
        s.add(CreditEntry(workspace_id=workspace_id, kind="spend", amount_micros=-spent_now, balance_after_micros=balance, note="usage"))
        last_topup = s.execute(
            select(CreditEntry.balance_after_micros, CreditEntry.created_at).where(CreditEntry.workspace_id == workspace_id, CreditEntry.kind == "topup").order_by(CreditEntry.id.desc()).limit(1)
        ).one_or_none()
        if last_topup is not None:
            pool, since = last_topup
            _crossings(s, result, workspace_id, BudgetKind.CREDIT, workspace_id, slug, pool - balance - spent_now, pool - balance, pool, Period.NONE, since, thresholds or [])
    # The one rule for what holds the workspace back (store.standing); the stored flag follows it.
    want = workspace_hold(cap, cap_spent, funded, balance)
    have = paused_reason if WorkspaceStatus(status) is WorkspaceStatus.PAUSED else None
    if want is not None and want != have:
        ws = s.get(Workspace, workspace_id)
        reconcile_workspace(s, "system:budget", ws, "spend is within the cap and the pool", now)
        result.paused.append(f"workspace:{slug}")


def _crossings(s, result, workspace_id, kind, budget_id, name, before, spent_after, limit, period, start, thresholds) -> None:
    if limit is None or limit <= 0:
        return
    # ≥, not >: spend that reaches a threshold exactly has reached it.
    crossed = [t for t in sorted(thresholds) if before * 100 < t * limit <= spent_after * 100]
    if not crossed:
        return
    insert = _dialect_insert(s)
    rows = [
        {"budget_kind": kind, "budget_id": budget_id, "period_start": start, "threshold": t, "workspace_id": workspace_id, "spent_micros": spent_after, "limit_micros": limit}
        for t in crossed
    ]
    stmt = insert(AlertSent).on_conflict_do_nothing().returning(AlertSent.threshold)
    fresh = sorted(t for (t,) in s.execute(stmt, rows))
    if not fresh:
        return
    # One alert per batch and budget: the highest threshold crossed says it all.
    top = fresh[-1]
    crossing = Crossing(workspace_id, kind, budget_id, name, top, spent_after, limit, period)
    result.crossings.append(crossing)
    outbox.emit(
        s,
        ActionKind.POST_ALERT,
        workspace_id=workspace_id,
        payload={"kind": kind.value, "budget_id": budget_id, "name": name, "threshold": top, "thresholds": fresh, "spent_micros": spent_after, "limit_micros": limit, "period": period.value},
    )


@dataclass(frozen=True)
class UsageRow:
    label: str
    amount_micros: int
    events: int


@dataclass(frozen=True)
class UsageReport:
    scope: str
    days: int
    total_micros: int
    rows: list[UsageRow]


def usage_report(s: Session, actor: Actor, workspace_id: int, *, project: str | None = None, mine: bool = False, days: int = 30) -> UsageReport:
    """Spend over the last ``days``: one's own, or (Admin, Viewer, Billing) the whole workspace's."""
    if not 1 <= days <= 366:
        raise InvalidInput("Look back between 1 and 366 days.")
    ws = load_workspace(s, workspace_id)
    me = membership(s, actor, ws.id)
    own_only = mine
    if not mine:
        try:
            authorize(s, actor, ws, Permission.VIEW_ALL_USAGE, resource=f"workspace:{ws.slug}", attempted="usage.view_all")
        except PermissionDenied:
            if me is None:
                raise
            own_only = True  # a Developer asking for "usage" gets their own
    if own_only:
        me = authorize(s, actor, ws, Permission.VIEW_OWN_USAGE, resource=f"workspace:{ws.slug}", attempted="usage.view_own")
    since = utcnow() - timedelta(days=days)
    stmt = select(ApiKey.name, Member.slack_user_id, Member.email, Project.slug, func.sum(UsageEvent.amount_micros), func.count()).select_from(UsageEvent)
    stmt = stmt.join(ApiKey, ApiKey.id == UsageEvent.key_id).join(Member, Member.id == ApiKey.member_id).outerjoin(Project, Project.id == UsageEvent.project_id)
    stmt = stmt.where(UsageEvent.workspace_id == ws.id, UsageEvent.occurred_at >= since)
    if own_only and me is not None:
        stmt = stmt.where(ApiKey.member_id == me.id)
    if project:
        stmt = stmt.where(Project.slug == project.strip().lower())
    stmt = stmt.group_by(ApiKey.name, Member.slack_user_id, Member.email, Project.slug).order_by(func.sum(UsageEvent.amount_micros).desc())
    rows = [
        UsageRow(f"{key} ({slack or email}) · {proj or 'no project'}", int(total or 0), int(n))
        for key, slack, email, proj, total, n in s.execute(stmt)
    ]
    return UsageReport("yours" if own_only else "workspace", days, sum(r.amount_micros for r in rows), rows)


def roll_over_periods(s: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """New period: what a spent budget paused resumes once this period's spend is under it.

    Totals need no reset (they are keyed by period start) and alerts re-arm the same way.
    """
    now = now or utcnow()
    resumed: dict[int, list[str]] = defaultdict(list)

    for proj in s.scalars(select(Project).where(Project.status == ProjectStatus.PAUSED, Project.paused_by == "budget").with_for_update(skip_locked=True)):
        ws = s.get(Workspace, proj.workspace_id)
        if reconcile_project(s, "system:clock", ws, proj, "a new budget period began", now) is None:
            resumed[ws.id].append(f"project `{proj.slug}`")
    for ws in s.scalars(select(Workspace).where(Workspace.status == WorkspaceStatus.PAUSED, Workspace.paused_reason == "cap").with_for_update(skip_locked=True)):
        # A new cap period lifts the cap, not an empty pool: the workspace then stays paused for credit.
        if reconcile_workspace(s, "system:clock", ws, "a new cap period began", now) is None:
            resumed[ws.id].append("the workspace cap")
    announced = []
    for workspace_id, what in resumed.items():
        outbox.emit(s, ActionKind.ANNOUNCE_ROLLOVER, workspace_id=workspace_id, payload={"resumed": what})
        announced.append({"workspace_id": workspace_id, "resumed": what})
    return announced


def sync_provider_usage(s: Session, provider: str, usages: Sequence[tuple[str, int]], now: datetime | None = None) -> IngestResult:
    """Turn a provider's cumulative per-key usage into usage events for the increase since the last sync.

    The event's external id is the cumulative figure itself, so syncing twice adds nothing.
    """
    now = now or utcnow()
    cumulative = dict(usages)
    if not cumulative:
        return IngestResult()
    events: list[UsageIn] = []
    refs = sorted(cumulative)
    # Workspaces first, in id order, as every other operation does, then the keys.
    owning = sorted(set(s.scalars(select(ApiKey.workspace_id).where(ApiKey.provider == provider, ApiKey.provider_ref.in_(refs)))))
    s.execute(select(Workspace.id).where(Workspace.id.in_(owning)).order_by(Workspace.id).with_for_update(key_share=True))
    for chunk in (refs[i : i + 1000] for i in range(0, len(refs), 1000)):
        for key in s.scalars(select(ApiKey).where(ApiKey.provider == provider, ApiKey.provider_ref.in_(chunk)).order_by(ApiKey.id).with_for_update()):
            current = cumulative[key.provider_ref]
            if current > key.synced_usage_micros:
                events.append(UsageIn(f"{provider}:{key.provider_ref}:{current}", key.id, current - key.synced_usage_micros, now))
                key.synced_usage_micros = current
    return ingest_usage(s, events, now) if events else IngestResult()
