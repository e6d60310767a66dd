"""Recording a batch of usage events: the hours and running totals they count in, the credit they use.

On PostgreSQL two statements do it all; on SQLite the same rules run in Python. Either
way the caller (store.ingest) learns which events were duplicates, the budgeted projects
(read after the workspaces were locked), each debited workspace, and for each total of a
current period that a check reads and the batch moved, its amount after the batch and
the batch's part of it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

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


class KeyRow(NamedTuple):
    """What ingest needs of a key."""

    workspace_id: int
    project_id: int | None
    limit_micros: int | None
    limit_period: str  # a Period's value
    provider: str


class Budgeted(NamedTuple):
    """A project with a budget that a batch spent on."""

    id: int
    workspace_id: int
    slug: str
    budget_micros: int
    budget_period: str  # a Period (or its value)
    status: str  # a ProjectStatus (or its value)
    raised: int  # what the temporary raises in force add to the budget (store.standing.raised)


class Debit(NamedTuple):
    """A workspace a batch spent in: what it spent, and the workspace after its pool was debited."""

    spent: int
    balance: int
    funded: bool
    cap: int | None
    cap_period: str
    status: str
    paused_reason: str | None
    slug: str
    thresholds: list[int] | None


class Recorded(NamedTuple):
    duplicate: set[int]  # positions in the rows given
    moved: dict[TotalKey, tuple[int, int]]  # the totals the checks read that the batch moved: after, the batch's part
    budgeted: dict[int, Budgeted]
    debits: dict[int, Debit]


# The start of each tracked period for each day a batch's events fall on: the same rule
# as store.periods.period_start, on timestamps stored as UTC (date_trunc('week') starts
# weeks on Monday, as ISO does). Worked out once a day, not once an event.
_TRACKED_SQL = ", ".join(f"('{p}')" for p in PERIODS)
_STARTS_SQL = (
    f"SELECT d.day, t.period, CASE t.period WHEN '{Period.DAILY.value}' THEN d.day WHEN '{Period.WEEKLY.value}' THEN date_trunc('week', d.day) "
    f"WHEN '{Period.MONTHLY.value}' THEN date_trunc('month', d.day) ELSE CAST(:epoch AS timestamp) END AS period_start "
    f"FROM (SELECT DISTINCT day FROM daily) AS d CROSS JOIN (VALUES {_TRACKED_SQL}) AS t(period)"
)

# On PostgreSQL a batch costs two statements. The first looks up its keys and locks
# their workspaces (below); the second records it: it inserts the events (a duplicate's
# insert does nothing), adds the new ones to their hours (spend_hours), sums them by key
# and UTC day, adds those to the totals they move, reads the budgeted projects, and
# debits each workspace's credit pool by its new spend. A budgeted project comes with what
# the raises in force add to its budget (a raise is granted under the workspace's lock too). PostgreSQL runs a data-modifying
# WITH to completion whether or not the query reads it, and a statement's snapshot is
# taken when it starts, after the lock: the budgets it reads stay true until commit.
# It answers in one row of JSON arrays, parsed in C, rather than a row per total:
# the duplicates' positions; each current-period total a check reads (a workspace's, a
# budgeted project's for its budget's period, a limited key's), its amount after the
# batch and the batch's part of it; the budgeted projects; the debited workspaces.
# (Each total's part comes from the same sums that moved it, filtered alike and matched
# by key in Python: joined to the upsert's answer here, on estimates of a row or two,
# the planner compared every total with every other.)
# The events travel as one JSON array: the driver quotes one string in C, where an
# array parameter per column costs a Python step and a regular expression for every
# element. Everything aggregated reads the insert's RETURNING, so only new events count,
# with no join back to the batch. Hours and totals are written in key order, so
# concurrent batches lock rows in one order (events are new rows of one workspace's
# batch at a time: its lock, taken first, queues the others).
_PG_LOOKUP = text(
    """
    WITH k AS (
        SELECT id, workspace_id, project_id, limit_micros, limit_period, provider FROM api_keys
        WHERE id IN (SELECT CAST(jsonb_array_elements_text(CAST(:ids AS jsonb)) AS bigint))
    ), w AS (
        SELECT id, alert_thresholds FROM workspaces WHERE id IN (SELECT workspace_id FROM k) ORDER BY id FOR NO KEY UPDATE
    )
    SELECT (SELECT json_agg(json_build_array(id, workspace_id, project_id, limit_micros, limit_period, provider)) FROM k),
           (SELECT json_agg(json_build_array(id, alert_thresholds)) FROM w)
    """
)

_CURRENT_SQL = f"CASE {{t}}.period WHEN '{Period.DAILY.value}' THEN :day WHEN '{Period.WEEKLY.value}' THEN :week WHEN '{Period.MONTHLY.value}' THEN :month ELSE :epoch END"
# A check reads a workspace's totals of every period, a budgeted project's for its
# budget's period, a limited key's for its limit period. The OR keeps the list a hashed
# lookup rather than a join the planner would order on its tiny estimates.
_WANTED_SQL = "{t}.period_start = " + _CURRENT_SQL + f" AND ({{t}}.scope = '{WORKSPACE}' OR ({{t}}.scope, {{t}}.scope_id, {{t}}.period) IN (SELECT scope, scope_id, period FROM wanted))"

_PG_RECORD = text(
    f"""
    WITH e AS (
        SELECT j.n, j.r->>0 AS external_id, CAST(j.r->>1 AS bigint) AS workspace_id, CAST(j.r->>2 AS bigint) AS project_id,
               CAST(j.r->>3 AS bigint) AS key_id, CAST(j.r->>4 AS bigint) AS amount_micros, j.r->>5 AS model,
               CAST(j.r->>6 AS integer) AS prompt_tokens, CAST(j.r->>7 AS integer) AS completion_tokens,
               CAST(j.r->>8 AS timestamp) AS occurred_at, j.r->>9 AS key_period
        FROM jsonb_array_elements(CAST(:events AS jsonb)) WITH ORDINALITY AS j(r, n)
    ), inserted AS (
        INSERT INTO usage_events (external_id, workspace_id, project_id, key_id, amount_micros, model, prompt_tokens, completion_tokens, occurred_at, ingested_at)
        SELECT external_id, workspace_id, project_id, key_id, amount_micros, model, prompt_tokens, completion_tokens, occurred_at, :ingested_at
        FROM e
        ON CONFLICT (workspace_id, external_id) DO NOTHING
        RETURNING workspace_id, external_id, project_id, key_id, amount_micros, model, prompt_tokens, completion_tokens, occurred_at
    ), hourly AS (
        INSERT INTO spend_hours (workspace_id, hour, key_id, model, project_id, amount_micros, events, prompt_tokens, completion_tokens)
        SELECT workspace_id, date_trunc('hour', occurred_at), key_id, coalesce(model, ''), max(project_id), sum(amount_micros), count(*),
               coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0)
        FROM inserted GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (workspace_id, hour, key_id, model) DO UPDATE SET
            amount_micros = spend_hours.amount_micros + excluded.amount_micros, events = spend_hours.events + excluded.events,
            prompt_tokens = spend_hours.prompt_tokens + excluded.prompt_tokens, completion_tokens = spend_hours.completion_tokens + excluded.completion_tokens
    ), daily AS (
        SELECT key_id, project_id, workspace_id, date_trunc('day', occurred_at) AS day, sum(amount_micros) AS amount
        FROM inserted WHERE amount_micros <> 0
        GROUP BY 1, 2, 3, 4
    ), starts AS (
        {_STARTS_SQL}
    ), delta AS (
        SELECT '{KEY}' AS scope, d.key_id AS scope_id, k.key_period AS period, s.period_start, CAST(sum(d.amount) AS bigint) AS amount
        FROM daily AS d JOIN (SELECT DISTINCT key_id, key_period FROM e) AS k USING (key_id)
        JOIN starts AS s ON s.day = d.day AND s.period = k.key_period GROUP BY 1, 2, 3, 4
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
    ), budgeted AS (
        SELECT p.id, p.workspace_id, p.slug, p.budget_micros, p.budget_period, p.status,
               CAST(coalesce((SELECT sum(r.amount_micros) FROM budget_raises AS r
                              WHERE r.project_id = p.id AND r.ends_at > :now AND r.starts_at <= :now), 0) AS bigint) AS raised
        FROM projects AS p
        WHERE p.id IN (SELECT project_id FROM e) AND p.budget_micros IS NOT NULL
    ), wanted AS (
        SELECT '{PROJECT}' AS scope, id AS scope_id, budget_period AS period FROM budgeted
        UNION ALL
        SELECT DISTINCT '{KEY}', e.key_id, e.key_period FROM e WHERE e.key_id IN (SELECT CAST(jsonb_array_elements_text(CAST(:limited AS jsonb)) AS bigint))
    ), spent AS (
        SELECT workspace_id, sum(amount_micros) AS amount FROM inserted GROUP BY 1
    ), debited AS (
        -- only a funded pool is debited; before its first top-up, spend is just counted
        UPDATE workspaces AS w SET credit_balance_micros = CASE WHEN w.credit_funded THEN w.credit_balance_micros - spent.amount ELSE w.credit_balance_micros END
        FROM spent WHERE w.id = spent.workspace_id AND spent.amount <> 0
        RETURNING w.id, CAST(spent.amount AS bigint) AS spent, w.credit_balance_micros, w.credit_funded, w.cap_micros, w.cap_period, w.status, w.paused_reason, w.slug, w.alert_thresholds
    )
    SELECT
        (SELECT json_agg(e.n) FROM e
         WHERE (SELECT count(*) FROM inserted) < :count
           AND NOT EXISTS (SELECT FROM inserted AS i WHERE i.workspace_id = e.workspace_id AND i.external_id = e.external_id)),
        (SELECT json_agg(json_build_array(m.scope, m.scope_id, m.period, m.amount_micros)) FROM moved AS m WHERE {_WANTED_SQL.format(t="m")}),
        (SELECT json_agg(json_build_array(d.scope, d.scope_id, d.period, d.amount)) FROM delta AS d WHERE {_WANTED_SQL.format(t="d")}),
        (SELECT json_agg(json_build_array(id, workspace_id, slug, budget_micros, budget_period, status, raised)) FROM budgeted),
        (SELECT json_agg(json_build_array(id, spent, credit_balance_micros, credit_funded, cap_micros, cap_period, status, paused_reason, slug, alert_thresholds)) FROM debited)
    """
).bindparams(*(bindparam(name, type_=UTCDateTime()) for name in ("ingested_at", "now", "day", "week", "month")), bindparam("epoch", EPOCH, type_=UTCDateTime()))


def lookup_pg(s: Session, key_ids: list[int]) -> tuple[dict[int, KeyRow], dict[int, list[int]]]:
    """The keys asked for, and the alert thresholds of their workspaces, locked (in id order, as every administrative
    operation locks them): ingest then queues behind an admin changing a budget, a cap or the thresholds, and they behind it."""
    found, locked = s.execute(_PG_LOOKUP, {"ids": json.dumps(key_ids)}).one()
    return {k[0]: KeyRow._make(k[1:]) for k in found or ()}, {w: list(t or []) for w, t in locked or ()}


def record_pg(s: Session, rows: list[EventRow], now: datetime, limited: list[int], *, ingested_at: datetime | None = None) -> Recorded:
    """Insert the events, move their hours and totals, read the budgeted projects, debit the pools (see _PG_RECORD)."""
    # The time in UTC, so the offset the cast to timestamp ignores is +00:00. (Encoding the
    # rows as they are, with isoformat as the encoder's default, measured slower.)
    events = json.dumps(
        [[r.external_id, r.workspace_id, r.project_id, r.key_id, r.amount_micros, r.model, r.prompt_tokens, r.completion_tokens, r.occurred_at.isoformat(), r.key_period] for r in rows]
    )
    current = {name: period_start(period, now) for name, period in (("day", Period.DAILY), ("week", Period.WEEKLY), ("month", Period.MONTHLY))}
    params = {"events": events, "ingested_at": ingested_at or now, "now": now, "count": len(rows), "limited": json.dumps(limited), **current}
    duplicates, after, parts, budgeted, debited = s.execute(_PG_RECORD, params).one()
    part = {(scope, scope_id, period): amount for scope, scope_id, period, amount in parts or ()}
    return Recorded(
        {n - 1 for n in duplicates or ()},  # WITH ORDINALITY counts from 1
        {(scope, scope_id, period): (amount, part[(scope, scope_id, period)]) for scope, scope_id, period, amount in after or ()},
        {p[0]: Budgeted._make(p) for p in budgeted or ()},
        {d[0]: Debit._make(d[1:]) for d in debited or ()},
    )
