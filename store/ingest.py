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

The statements that record a batch, move its totals and debit its credit are
store.recording (PostgreSQL) and store.recording_sqlite; the threshold alerts a batch
sets off, store.thresholds.

Spend a gateway reports for a key on a leased provider (``top_up_leases``) is not
recorded — the provider reports it, and the sync reads it from there; counted here too it
would count twice — but asks for a rebalance of its workspace's quota leases
(store.quota): the key may be near the end of its lease at the provider, and the poll
would hear of it only at its next reading. The rebalance reads the keys' real usage at
the provider first. One statement a batch, and only for a batch with such a key in it;
a workspace with a rebalance still waiting gets no second one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import outbox
from store.errors import InvalidInput
from store.models import CreditEntry, Project, Workspace
from store.money import MAX_MICROS
from store.periods import period_start
from store.quota import LEASED_PROVIDERS
from store.recording import KEY, PROJECT, WORKSPACE, Budgeted, Debit, EventRow, KeyRow, lookup_pg, record_pg
from store.recording_sqlite import lookup_sqlite, record_sqlite
from store.standing import budget_spent_reason, pause_project_row, reconcile_workspace, workspace_hold
from store.thresholds import Crossing, record_crossings
from store.totals import spent
from store.types import ActionKind, BudgetKind, Period, ProjectStatus, Scope, WorkspaceStatus, utcnow

#: events stamped further in the future than this are refused: a clock is wrong somewhere
FUTURE_SKEW = timedelta(minutes=5)
MAX_BATCH = 10_000


@dataclass(frozen=True)
class UsageIn:
    external_id: str
    key_id: int
    amount_micros: int
    occurred_at: datetime
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


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


#: the totals a limit, budget or cap is checked against that a batch moved: the amount
#: after the batch, and the batch's part of it
Moved = dict[tuple[str, int, str], tuple[int, int]]


NOTED = "the provider reports this key's spend itself; Purser reads it from there, and was asked to now"


def ingest_usage(s: Session, events: Sequence[UsageIn], now: datetime | None = None, *, top_up_leases: bool = False) -> IngestResult:
    """Record spend. Not one audit event per usage event; pauses it causes are audited.

    ``top_up_leases``: the spend was reported from outside the provider (a gateway), so the
    workspaces of leased keys among it are rebalanced (the provider's own sync says False).
    """
    asked_at, now = now, now or utcnow()
    result = IngestResult()
    if len(events) > MAX_BATCH:
        raise InvalidInput(f"Send at most {MAX_BATCH} usage events at a time; this batch has {len(events)}.")
    pg = s.get_bind().dialect.name == "postgresql"
    # The keys, and their workspaces locked in id order, as every administrative operation
    # locks them: ingest then queues behind an admin changing a budget, a cap or the
    # thresholds (and they behind it), so the budgets read later stay true until this
    # commits; and the project and workspace rows a pause below locks are taken in the
    # admins' order. Batches of one workspace queue here; they would queue on its totals anyway.
    keys, thresholds = (lookup_pg if pg else lookup_sqlite)(s, sorted({e.key_id for e in events if isinstance(e.key_id, int)}))
    result.verdicts = [("accepted", None)] * len(events)
    rows, origin = _admit(events, keys, now, result)
    if top_up_leases:
        # A leased key's spend is the provider's to report (the sync reads its cumulative
        # usage); counted here too it would count twice. A gateway's report of it is a
        # signal: the workspace's leases are read and topped up now.
        leased = [i for i, r in enumerate(rows) if keys[r.key_id].provider in LEASED_PROVIDERS]
        if leased:
            for i in leased:
                result.verdicts[origin[i]] = ("noted", NOTED)
            outbox.emit_unless_waiting(s, ActionKind.REBALANCE_LEASES, sorted({rows[i].workspace_id for i in leased if rows[i].amount_micros}))
            keep = [i for i in range(len(rows)) if i not in set(leased)]
            rows, origin = [rows[i] for i in keep], [origin[i] for i in keep]
    if not rows:
        return result
    limited = sorted({r.key_id for r in rows if keys[r.key_id].limit_micros is not None})
    # Stamped once the workspaces are locked, not when the batch arrived: a statement closes
    # under the same lock (store.statements), and an event stamped before a close it waited
    # behind would be in neither that statement nor the next one's corrections. (A caller
    # that names the instant — a test, a replay — gets that instant.)
    ingested_at = asked_at or utcnow()
    duplicate, moved, budgeted, debits = (record_pg if pg else record_sqlite)(s, rows, now, limited, ingested_at=ingested_at)
    for i, r in enumerate(rows):
        if i in duplicate:
            result.duplicates.append(r.external_id)
            result.verdicts[origin[i]] = ("duplicate", None)
        else:
            result.accepted.append(r.external_id)
    if not debits:
        return result  # no spend: nothing moved that a check reads
    for workspace_id in debits:  # an object loaded before the debit holds the balance before it
        loaded = s.identity_map.get(s.identity_key(Workspace, workspace_id))
        if loaded is not None:
            s.expire(loaded, ["credit_balance_micros"])
    _check_key_limits(s, keys, moved)
    _check_projects(s, budgeted, moved, thresholds, now, result)
    for workspace_id in sorted(debits):
        _check_workspace(s, workspace_id, debits[workspace_id], moved, now, result)
    return result


def _admit(events: Sequence[UsageIn], keys: dict[int, KeyRow], now: datetime, result: IngestResult) -> tuple[list[EventRow], list[int]]:
    """The events to record, each once, and where each stood in the batch; refusals and repeats go to ``result``."""
    latest = now + FUTURE_SKEW
    utc = timezone.utc
    rows: list[EventRow] = []
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
            EventRow(e.external_id, key.workspace_id, key.project_id, e.key_id, e.amount_micros, model, e.prompt_tokens, e.completion_tokens, e.occurred_at.astimezone(utc), key.limit_period)
        )
    return rows, origin


def _refusal(e: UsageIn, keys: dict[int, KeyRow], latest: datetime) -> str | None:
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


def _check_key_limits(s: Session, keys: dict[int, KeyRow], moved: Moved) -> None:
    """A key reaching its own limit changes what a gateway hears for it: tell the caches."""
    for (scope, key_id, _), (after, delta) in moved.items():
        if scope == KEY:
            key = keys[key_id]
            if after - delta < key.limit_micros <= after:
                s.info.setdefault("changed_workspaces", set()).add(key.workspace_id)


def _check_projects(s: Session, budgeted: dict[int, Budgeted], moved: Moved, thresholds: dict[int, list[int]], now: datetime, result: IngestResult) -> None:
    for pid in sorted(budgeted):
        p = budgeted[pid]
        period = Period(p.budget_period)
        k = (PROJECT, pid, period.value)
        if k not in moved:
            continue  # no spend, or only late events for an earlier period: they count, but alert nobody now
        spent_after, delta = moved[k]
        limit = p.budget_micros + p.raised  # thresholds and the pause read the limit in force, raises and all
        record_crossings(s, result.crossings, p.workspace_id, BudgetKind.PROJECT, pid, p.slug, spent_after - delta, spent_after, limit, period, period_start(period, now), thresholds[p.workspace_id])
        if spent_after >= limit and ProjectStatus(p.status) is ProjectStatus.ACTIVE:
            proj = s.scalars(select(Project).where(Project.id == pid).with_for_update()).one()
            ws = s.get(Workspace, p.workspace_id)
            if pause_project_row(s, "system:budget", ws, proj, budget_spent_reason(p.budget_micros, limit), by="budget"):
                result.paused.append(f"project:{p.slug}")


def _check_workspace(s: Session, workspace_id: int, debit: Debit, moved: Moved, now: datetime, result: IngestResult) -> None:
    # The pool was debited as the batch was recorded (store.recording), under the lock
    # taken first of all.
    spent_now, balance, funded, cap, cap_period, status, paused_reason, slug, thresholds = debit
    cap_spent = 0
    if cap is not None:
        period = Period(cap_period)
        k = (WORKSPACE, workspace_id, period.value)
        if k in moved:
            cap_spent, delta = moved[k]
            record_crossings(s, result.crossings, workspace_id, BudgetKind.CAP, workspace_id, slug, cap_spent - delta, cap_spent, cap, period, period_start(period, now), thresholds or [])
        else:  # only late events: this period's spend did not move, but the pool may have
            cap_spent = spent(s, Scope.WORKSPACE, workspace_id, period, now)
    if funded:
        s.add(CreditEntry(workspace_id=workspace_id, kind="spend", amount_micros=-spent_now, balance_after_micros=balance, note="usage"))
        last_topup = s.execute(
            select(CreditEntry.balance_after_micros, CreditEntry.created_at).where(CreditEntry.workspace_id == workspace_id, CreditEntry.kind == "topup").order_by(CreditEntry.id.desc()).limit(1)
        ).one_or_none()
        if last_topup is not None:
            pool, since = last_topup
            record_crossings(s, result.crossings, workspace_id, BudgetKind.CREDIT, workspace_id, slug, pool - balance - spent_now, pool - balance, pool, Period.NONE, since, thresholds or [])
    # The one rule for what holds the workspace back (store.standing); the stored flag follows it.
    want = workspace_hold(cap, cap_spent, funded, balance)
    have = paused_reason if WorkspaceStatus(status) is WorkspaceStatus.PAUSED else None
    if want is not None and want != have:
        ws = s.get(Workspace, workspace_id)
        reconcile_workspace(s, "system:budget", ws, "spend is within the cap and the pool", now)
        result.paused.append(f"workspace:{slug}")
