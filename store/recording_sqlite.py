"""Recording a batch on SQLite: what store.recording's statements do on PostgreSQL, as SQLAlchemy statements and Python.

SQLite takes one writer at a time (every transaction begins IMMEDIATE), so the order in
which rows are read and written matters less than on PostgreSQL; the rules are the same.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Iterable

from sqlalchemy import String, bindparam, case, select, type_coerce, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from store.models import ApiKey, Project, SpendTotal, UsageEvent, Workspace
from store.models_spend import SpendHour
from store.periods import TRACKED, period_start
from store.recording import KEY, PERIODS, PROJECT, WORKSPACE, Budgeted, Debit, EventRow, KeyRow, Recorded, TotalKey
from store.standing import raised
from store.types import Period, Scope


def lookup_sqlite(s: Session, key_ids: list[int]) -> tuple[dict[int, KeyRow], dict[int, list[int]]]:
    """What lookup_pg answers: the keys asked for, and their workspaces' alert thresholds."""
    c = ApiKey.__table__.c
    keys: dict[int, KeyRow] = {}
    for chunk in (key_ids[i : i + 5000] for i in range(0, len(key_ids), 5000)):
        stmt = select(c.id, c.workspace_id, c.project_id, c.limit_micros, type_coerce(c.limit_period, String), c.provider).where(c.id.in_(chunk))
        keys.update({row[0]: KeyRow._make(row[1:]) for row in s.execute(stmt)})
    workspace_ids = sorted({k.workspace_id for k in keys.values()})
    thresholds = {w: list(t or []) for w, t in s.execute(select(Workspace.id, Workspace.alert_thresholds).where(Workspace.id.in_(workspace_ids)).order_by(Workspace.id))}
    return keys, thresholds


_EVENT_COLUMNS = ("external_id", "workspace_id", "project_id", "key_id", "amount_micros", "model", "prompt_tokens", "completion_tokens", "occurred_at")


def record_sqlite(s: Session, rows: list[EventRow], now: datetime, limited: list[int], *, ingested_at: datetime | None = None) -> Recorded:
    """What record_pg does, in Python."""
    budgeted = _budgeted_projects(s, {r.project_id for r in rows if r.project_id is not None}, now)
    stmt = sqlite.insert(UsageEvent).on_conflict_do_nothing(index_elements=["workspace_id", "external_id"]).returning(UsageEvent.workspace_id, UsageEvent.external_id)
    stamp = ingested_at or now
    events = [{c: getattr(r, c) for c in _EVENT_COLUMNS} | {"ingested_at": stamp} for r in rows]
    new = {(w, x) for w, x in s.execute(stmt, events)}
    duplicate = {i for i, r in enumerate(rows) if (r.workspace_id, r.external_id) not in new}
    _add_hours(s, [r for i, r in enumerate(rows) if i not in duplicate])
    deltas = _deltas(r for i, r in enumerate(rows) if i not in duplicate)
    upsert = sqlite.insert(SpendTotal)
    upsert = upsert.on_conflict_do_update(
        index_elements=["scope", "scope_id", "period", "period_start"],
        set_={"amount_micros": SpendTotal.amount_micros + upsert.excluded.amount_micros},
    ).returning(SpendTotal.scope, SpendTotal.scope_id, SpendTotal.period, SpendTotal.period_start, SpendTotal.amount_micros)
    current = {period: period_start(period, now) for period in TRACKED}
    wanted = {(PROJECT, p.id, Period(p.budget_period).value) for p in budgeted.values()}
    limited_keys = set(limited)
    wanted.update((KEY, r.key_id, r.key_period) for r in rows if r.key_id in limited_keys)
    ordered = sorted(deltas.items())
    moved: dict[TotalKey, tuple[int, int]] = {}
    for chunk_start in range(0, len(ordered), 1000):
        chunk = ordered[chunk_start : chunk_start + 1000]
        params = [{"scope": Scope(k[0]), "scope_id": k[1], "period": Period(k[2]), "period_start": k[3], "amount_micros": v} for k, v in chunk]
        for scope, scope_id, period, start, amount in s.execute(upsert, params):
            total = (Scope(scope).value, scope_id, Period(period).value)
            if start == current[Period(period)] and (total[0] == WORKSPACE or total in wanted):
                moved[total] = (amount, deltas[(*total, start)])
    spent: dict[int, int] = defaultdict(int)
    for i, r in enumerate(rows):
        if i not in duplicate:
            spent[r.workspace_id] += r.amount_micros
    debits = {w: Debit(spent[w], *s.execute(_DEBIT, {"workspace_id": w, "spent": spent[w]}).one()) for w in sorted(spent) if spent[w]}
    return Recorded(duplicate, moved, budgeted, debits)


def _budgeted_projects(s: Session, project_ids: set[int], now: datetime) -> dict[int, Budgeted]:
    ids = sorted(project_ids)
    out = {}
    for chunk in (ids[i : i + 5000] for i in range(0, len(ids), 5000)):
        stmt = select(Project.id, Project.workspace_id, Project.slug, Project.budget_micros, Project.budget_period, Project.status)
        found = list(s.execute(stmt.where(Project.id.in_(chunk), Project.budget_micros.is_not(None))))
        extra = raised(s, [p.id for p in found], now)
        out.update({p.id: Budgeted(*p, extra.get(p.id, 0)) for p in found})
    return out


_WORKSPACES = Workspace.__table__.c
# The debit of a workspace's credit pool (only a funded pool is debited; before its first
# top-up, spend is just counted), answering with what the checks read. A statement on
# the table, not the ORM entity: the ORM's bookkeeping for an UPDATE took longer than the
# statement; an object it might have had to refresh is expired by store.ingest instead.
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


def _add_hours(s: Session, accepted: list[EventRow]) -> None:
    """The hourly rows these events move (the rule _PG_RECORD's ``hourly`` applies in SQL)."""
    hours: dict[tuple[int, datetime, int, str], list[int]] = {}
    for r in accepted:
        at = r.occurred_at.replace(minute=0, second=0, microsecond=0)
        row = hours.setdefault((r.workspace_id, at, r.key_id, r.model or ""), [r.project_id or 0, 0, 0, 0, 0])
        row[0] = max(row[0], r.project_id or 0)
        row[1] += r.amount_micros
        row[2] += 1
        row[3] += r.prompt_tokens or 0
        row[4] += r.completion_tokens or 0
    if not hours:
        return
    upsert = sqlite.insert(SpendHour)
    upsert = upsert.on_conflict_do_update(
        index_elements=["workspace_id", "hour", "key_id", "model"],
        set_={c: getattr(SpendHour, c) + getattr(upsert.excluded, c) for c in ("amount_micros", "events", "prompt_tokens", "completion_tokens")},
    )
    params = [
        {"workspace_id": w, "hour": h, "key_id": k, "model": m, "project_id": v[0] or None, "amount_micros": v[1], "events": v[2], "prompt_tokens": v[3], "completion_tokens": v[4]}
        for (w, h, k, m), v in sorted(hours.items())
    ]
    s.execute(upsert, params)


def _deltas(accepted: Iterable[EventRow]) -> dict[tuple[str, int, str, datetime], int]:
    """What each total gains from these events (the rule _PG_RECORD applies in SQL)."""
    deltas: dict[tuple[str, int, str, datetime], int] = defaultdict(int)
    for r in accepted:
        if r.amount_micros == 0:
            continue
        deltas[(KEY, r.key_id, r.key_period, period_start(Period(r.key_period), r.occurred_at))] += r.amount_micros
        for period, name in zip(TRACKED, PERIODS):
            start = period_start(period, r.occurred_at)
            deltas[(WORKSPACE, r.workspace_id, name, start)] += r.amount_micros
            if r.project_id is not None:
                deltas[(PROJECT, r.project_id, name, start)] += r.amount_micros
    return deltas
