"""Recording a batch of usage events and moving the running totals they count in.

On PostgreSQL one statement does it all; on SQLite the same rule runs in Python. Either
way the caller (store.ingest) learns which events were duplicates and, for each total
of a current period the batch moved, its amount after the batch.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Iterable, NamedTuple

from sqlalchemy import bindparam, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from store.models import SpendTotal, UsageEvent
from store.models_spend import SpendHour
from store.periods import EPOCH, TRACKED, period_start
from store.types import Period, Scope, UTCDateTime

# plain strings: an enum member's .value costs a descriptor call, and ingest takes thousands a batch
KEY, PROJECT, WORKSPACE = Scope.KEY.value, Scope.PROJECT.value, Scope.WORKSPACE.value
PERIODS = tuple(period.value for period in TRACKED)


class EventRow(NamedTuple):
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


# The start of each tracked period for each day a batch's events fall on: the same rule
# as store.periods.period_start, on timestamps stored as UTC (date_trunc('week') starts
# weeks on Monday, as ISO does). Worked out once a day, not once an event.
_TRACKED_SQL = ", ".join(f"('{p}')" for p in PERIODS)
_STARTS_SQL = (
    f"SELECT d.day, t.period, CASE t.period WHEN '{Period.DAILY.value}' THEN d.day WHEN '{Period.WEEKLY.value}' THEN date_trunc('week', d.day) "
    f"WHEN '{Period.MONTHLY.value}' THEN date_trunc('month', d.day) ELSE CAST(:epoch AS timestamp) END AS period_start "
    f"FROM (SELECT DISTINCT day FROM daily) AS d CROSS JOIN (VALUES {_TRACKED_SQL}) AS t(period)"
)

# On PostgreSQL one statement records a batch: it inserts the events (a duplicate's
# insert does nothing), adds the new ones to their hours (spend_hours; PostgreSQL runs a
# data-modifying WITH to completion whether or not the query reads it), sums them by key
# and day, adds those to the totals they
# move, and answers with the duplicates' positions and the amounts after of the totals
# of current periods it moved. (Each total's part of the batch is summed in Python, by
# store.ingest: joining it back here on estimates of a few rows each, the planner chose
# a nested loop that compared every total with every other, a hundred milliseconds.)
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
    ), hourly AS (
        INSERT INTO spend_hours (workspace_id, hour, key_id, model, project_id, amount_micros, events, prompt_tokens, completion_tokens)
        SELECT e.workspace_id, date_trunc('hour', e.occurred_at), e.key_id, coalesce(e.model, ''), max(e.project_id), sum(e.amount_micros), count(*),
               coalesce(sum(e.prompt_tokens), 0), coalesce(sum(e.completion_tokens), 0)
        FROM e JOIN inserted i ON i.workspace_id = e.workspace_id AND i.external_id = e.external_id
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (workspace_id, hour, key_id, model) DO UPDATE SET
            amount_micros = spend_hours.amount_micros + excluded.amount_micros, events = spend_hours.events + excluded.events,
            prompt_tokens = spend_hours.prompt_tokens + excluded.prompt_tokens, completion_tokens = spend_hours.completion_tokens + excluded.completion_tokens
    ), daily AS (
        SELECT e.key_id, e.key_period, e.project_id, e.workspace_id, date_trunc('day', e.occurred_at) AS day, sum(e.amount_micros) AS amount
        FROM e JOIN inserted i ON i.workspace_id = e.workspace_id AND i.external_id = e.external_id
        WHERE e.amount_micros <> 0
        GROUP BY 1, 2, 3, 4, 5
    ), starts AS (
        {_STARTS_SQL}
    ), delta AS (
        SELECT '{KEY}' AS scope, key_id AS scope_id, key_period AS period, s.period_start, CAST(sum(amount) AS bigint) AS amount
        FROM daily JOIN starts AS s ON s.day = daily.day AND s.period = daily.key_period GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT '{PROJECT}', project_id, s.period, s.period_start, CAST(sum(amount) AS bigint)
        FROM (SELECT project_id, day, sum(amount) AS amount FROM daily WHERE project_id IS NOT NULL GROUP BY 1, 2) AS p JOIN starts AS s USING (day) GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT '{WORKSPACE}', workspace_id, s.period, s.period_start, CAST(sum(amount) AS bigint)
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


def record_pg(s: Session, rows: list[EventRow], now: datetime) -> tuple[set[int], dict[TotalKey, int]]:
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


def record_sqlite(s: Session, rows: list[EventRow], now: datetime) -> tuple[set[int], dict[TotalKey, int]]:
    """What record_pg does, in Python: SQLite takes one writer at a time, so order matters less."""
    stmt = sqlite.insert(UsageEvent).on_conflict_do_nothing(index_elements=["workspace_id", "external_id"]).returning(UsageEvent.workspace_id, UsageEvent.external_id)
    events = [{c: getattr(r, c) for c in _EVENT_COLUMNS} | {"ingested_at": now} for r in rows]
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
    ordered = sorted(deltas.items())
    after: dict[TotalKey, int] = {}
    for chunk_start in range(0, len(ordered), 1000):
        chunk = ordered[chunk_start : chunk_start + 1000]
        params = [{"scope": Scope(k[0]), "scope_id": k[1], "period": Period(k[2]), "period_start": k[3], "amount_micros": v} for k, v in chunk]
        for scope, scope_id, period, start, amount in s.execute(upsert, params):
            if start == current[Period(period)]:
                after[(Scope(scope).value, scope_id, Period(period).value)] = amount
    return duplicate, after


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
