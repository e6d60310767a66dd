"""Usage ingest: spend events in, running totals moved, thresholds and pauses decided — one transaction.

Ingest is idempotent by (workspace, external id): re-sending a batch adds nothing.
Totals are upserted with ``amount = amount + delta`` and the new value returned, so
under concurrency each batch learns the exact total before and after its own spend,
and exactly one batch sees a threshold being crossed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import bindparam, case, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store import outbox
from store.budgets import pause_project_row, pause_workspace_row
from store.errors import InvalidInput, PermissionDenied
from store.models import AlertSent, ApiKey, CreditEntry, Member, Project, SpendTotal, UsageEvent, Workspace
from store.money import MAX_MICROS, format_money
from store.periods import TRACKED, period_start
from store.permissions import Actor, Permission, authorize, load_workspace, membership
from store.types import BudgetKind, Period, ProjectStatus, Scope, UTCDateTime, WorkspaceStatus, utcnow

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

    def outcome(self, external_id: str) -> str:
        if external_id in self.refused:
            return "refused"
        return "duplicate" if external_id in self.duplicates else "accepted"


def _dialect_insert(s: Session):
    return postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert


def ingest_usage(s: Session, events: Sequence[UsageIn], now: datetime | None = None) -> IngestResult:
    """Record spend. Not one audit event per usage event; pauses it causes are audited."""
    now = now or utcnow()
    result = IngestResult()
    if len(events) > MAX_BATCH:
        raise InvalidInput(f"Send at most {MAX_BATCH} usage events at a time; this batch has {len(events)}.")
    keys = _keys(s, {e.key_id for e in events})
    rows: list[dict[str, Any]] = []
    seen: set[tuple[int, str]] = set()
    for e in events:
        reason = _refusal(e, keys, now)
        if reason:
            result.refused[e.external_id] = reason
            continue
        workspace_id, project_id = keys[e.key_id]
        if (workspace_id, e.external_id) in seen:
            result.duplicates.append(e.external_id)
            continue
        seen.add((workspace_id, e.external_id))
        rows.append(
            {
                "external_id": e.external_id,
                "workspace_id": workspace_id,
                "project_id": project_id,
                "key_id": e.key_id,
                "amount_micros": int(e.amount_micros),
                "model": (e.model or None) and e.model[:120],
                "prompt_tokens": e.prompt_tokens,
                "completion_tokens": e.completion_tokens,
                "occurred_at": e.occurred_at,
                "ingested_at": now,
            }
        )
    if not rows:
        return result
    # Lock the workspace rows first, as every admin operation does. Otherwise the insert
    # below takes key-share locks on the key and project (foreign keys) and then waits on
    # an admin holding the workspace, who waits on those locks — a deadlock on PostgreSQL.
    # Batches of one workspace queue on its totals anyway, so this costs no concurrency.
    s.execute(select(Workspace.id).where(Workspace.id.in_(sorted({r["workspace_id"] for r in rows}))).order_by(Workspace.id).with_for_update(key_share=True))
    new = _insert_events(s, rows, now)
    accepted = [r for r in rows if (r["workspace_id"], r["external_id"]) in new]
    result.accepted = [r["external_id"] for r in accepted]
    result.duplicates += [r["external_id"] for r in rows if (r["workspace_id"], r["external_id"]) not in new]
    if accepted:
        _move_totals(s, accepted, now, result)
    return result


def _keys(s: Session, key_ids: Iterable[int]) -> dict[int, tuple[int, int | None]]:
    ids = [k for k in key_ids if isinstance(k, int)]
    out: dict[int, tuple[int, int | None]] = {}
    for chunk in (ids[i : i + 5000] for i in range(0, len(ids), 5000)):
        out.update({k: (w, p) for k, w, p in s.execute(select(ApiKey.id, ApiKey.workspace_id, ApiKey.project_id).where(ApiKey.id.in_(chunk)))})
    return out


def _refusal(e: UsageIn, keys: dict[int, tuple[int, int | None]], now: datetime) -> str | None:
    if not e.external_id or len(e.external_id) > 200:
        return "external_id must be 1–200 characters"
    if e.key_id not in keys:
        return "unknown key"
    if not isinstance(e.amount_micros, int) or isinstance(e.amount_micros, bool) or not 0 <= e.amount_micros <= MAX_MICROS:
        return "amount must be a whole number of micro-dollars from 0 to $1,000,000,000"
    if e.occurred_at.tzinfo is None:
        return "occurred_at must carry a time zone"
    if e.occurred_at > now + FUTURE_SKEW:
        return "occurred_at is in the future"
    for tokens in (e.prompt_tokens, e.completion_tokens):
        if tokens is not None and not (isinstance(tokens, int) and 0 <= tokens < 2**31):
            return "token counts must be whole numbers from 0"
    return None


def _move_totals(s: Session, accepted: list[dict[str, Any]], now: datetime, result: IngestResult) -> None:
    deltas: dict[tuple[str, int, str, datetime], int] = defaultdict(int)
    by_workspace: dict[int, int] = defaultdict(int)
    # Enum member lookups are slow enough to show at twelve totals an event.
    key, project, workspace = Scope.KEY.value, Scope.PROJECT.value, Scope.WORKSPACE.value
    tracked = [(period, period.value) for period in TRACKED]
    for r in accepted:
        amount = r["amount_micros"]
        if amount == 0:
            continue
        by_workspace[r["workspace_id"]] += amount
        for period, name in tracked:
            start = period_start(period, r["occurred_at"])
            deltas[(key, r["key_id"], name, start)] += amount
            deltas[(workspace, r["workspace_id"], name, start)] += amount
            if r["project_id"] is not None:
                deltas[(project, r["project_id"], name, start)] += amount
    if not deltas:
        return
    # One statement, rows in a fixed order: concurrent batches lock totals in the same
    # order and so cannot deadlock on each other.
    ordered = sorted(deltas.items())
    after = _upsert_totals(s, ordered)
    _check_key_limits(s, deltas, after, now)
    _check_projects(s, deltas, after, now, result)
    for workspace_id in sorted(by_workspace):
        _check_workspace(s, workspace_id, by_workspace[workspace_id], deltas, after, now, result)


# On PostgreSQL a batch travels as one array per column through unnest(): a short
# statement, where a multi-row VALUES of tens of thousands of placeholders costs the
# driver more to build and parse than the server needs to run it. WITH ORDINALITY …
# ORDER BY keeps the rows in the order given, which the lock order relies on.
_PG_INSERT_EVENTS = text(
    """
    INSERT INTO usage_events (external_id, workspace_id, project_id, key_id, amount_micros, model, prompt_tokens, completion_tokens, occurred_at, ingested_at)
    SELECT external_id, workspace_id, project_id, key_id, amount_micros, model, prompt_tokens, completion_tokens, occurred_at, CAST(:ingested_at AS timestamp)
    FROM unnest(
        CAST(:external_id AS varchar[]), CAST(:workspace_id AS bigint[]), CAST(:project_id AS bigint[]), CAST(:key_id AS bigint[]), CAST(:amount_micros AS bigint[]),
        CAST(:model AS varchar[]), CAST(:prompt_tokens AS integer[]), CAST(:completion_tokens AS integer[]), CAST(:occurred_at AS timestamp[])
    ) WITH ORDINALITY AS e(external_id, workspace_id, project_id, key_id, amount_micros, model, prompt_tokens, completion_tokens, occurred_at, n)
    ORDER BY n
    ON CONFLICT (workspace_id, external_id) DO NOTHING
    RETURNING workspace_id, external_id
    """
).bindparams(bindparam("occurred_at", type_=postgresql.ARRAY(UTCDateTime())), bindparam("ingested_at", type_=UTCDateTime()))
_EVENT_ARRAYS = ("external_id", "workspace_id", "project_id", "key_id", "amount_micros", "model", "prompt_tokens", "completion_tokens", "occurred_at")

_PG_UPSERT_TOTALS = (
    text(
        """
        INSERT INTO spend_totals (scope, scope_id, period, period_start, amount_micros)
        SELECT scope, scope_id, period, period_start, amount_micros
        FROM unnest(CAST(:scope AS varchar[]), CAST(:scope_id AS bigint[]), CAST(:period AS varchar[]), CAST(:period_start AS timestamp[]), CAST(:amount_micros AS bigint[]))
            WITH ORDINALITY AS t(scope, scope_id, period, period_start, amount_micros, n)
        ORDER BY n
        ON CONFLICT (scope, scope_id, period, period_start) DO UPDATE SET amount_micros = spend_totals.amount_micros + excluded.amount_micros
        RETURNING scope, scope_id, period, period_start, amount_micros
        """
    )
    .bindparams(bindparam("period_start", type_=postgresql.ARRAY(UTCDateTime())))
    .columns(period_start=UTCDateTime())
)


def _insert_events(s: Session, rows: list[dict[str, Any]], now: datetime) -> set[tuple[int, str]]:
    """The (workspace, external id) of the rows that were new."""
    if s.get_bind().dialect.name == "postgresql":
        params = {c: [r[c] for r in rows] for c in _EVENT_ARRAYS}
        return {(w, x) for w, x in s.execute(_PG_INSERT_EVENTS, {**params, "ingested_at": now})}
    stmt = _dialect_insert(s)(UsageEvent).on_conflict_do_nothing(index_elements=["workspace_id", "external_id"]).returning(UsageEvent.workspace_id, UsageEvent.external_id)
    return {(w, x) for w, x in s.execute(stmt, rows)}


def _upsert_totals(s: Session, ordered: list[tuple[tuple[str, int, str, datetime], int]]) -> dict[tuple[str, int, str, datetime], int]:
    """Add each delta to its total; the totals after."""
    if s.get_bind().dialect.name == "postgresql":
        params = {name: [k[i] for k, _ in ordered] for i, name in enumerate(("scope", "scope_id", "period", "period_start"))}
        params["amount_micros"] = [v for _, v in ordered]
        return {(scope, scope_id, period, start): amount for scope, scope_id, period, start, amount in s.execute(_PG_UPSERT_TOTALS, params)}
    stmt = _dialect_insert(s)(SpendTotal)
    stmt = stmt.on_conflict_do_update(
        index_elements=["scope", "scope_id", "period", "period_start"],
        set_={"amount_micros": SpendTotal.amount_micros + stmt.excluded.amount_micros},
    ).returning(SpendTotal.scope, SpendTotal.scope_id, SpendTotal.period, SpendTotal.period_start, SpendTotal.amount_micros)
    after = {}
    for chunk_start in range(0, len(ordered), 1000):
        chunk = ordered[chunk_start : chunk_start + 1000]
        params = [{"scope": Scope(k[0]), "scope_id": k[1], "period": Period(k[2]), "period_start": k[3], "amount_micros": v} for k, v in chunk]
        for scope, scope_id, period, start, amount in s.execute(stmt, params):
            after[(Scope(scope).value, scope_id, Period(period).value, start)] = amount
    return after


def _check_key_limits(s, deltas, after, now) -> None:
    """A key reaching its own limit changes what a gateway hears for it: tell the caches."""
    key_ids = sorted({k[1] for k in deltas if k[0] == Scope.KEY.value})
    limited = []
    for chunk in (key_ids[i : i + 5000] for i in range(0, len(key_ids), 5000)):
        limited += s.execute(
            select(ApiKey.id, ApiKey.workspace_id, ApiKey.limit_micros, ApiKey.limit_period).where(ApiKey.id.in_(chunk), ApiKey.limit_micros.is_not(None))
        ).all()
    for key_id, workspace_id, limit, period in limited:
        period = Period(period)
        k = (Scope.KEY.value, key_id, period.value, period_start(period, now))
        if k in deltas and after[k] - deltas[k] < limit <= after[k]:
            s.info.setdefault("changed_workspaces", set()).add(workspace_id)


def _check_projects(s, deltas, after, now, result) -> None:
    project_ids = sorted({k[1] for k in deltas if k[0] == Scope.PROJECT.value})
    if not project_ids:
        return
    budgeted = {}
    for chunk in (project_ids[i : i + 5000] for i in range(0, len(project_ids), 5000)):
        budgeted.update(
            {
                p.id: p
                for p in s.execute(
                    select(Project.id, Project.workspace_id, Project.slug, Project.budget_micros, Project.budget_period, Project.status).where(
                        Project.id.in_(chunk), Project.budget_micros.is_not(None)
                    )
                )
            }
        )
    if not budgeted:
        return
    thresholds = _thresholds(s, {p.workspace_id for p in budgeted.values()})
    for pid in project_ids:
        p = budgeted.get(pid)
        if p is None:
            continue
        period = Period(p.budget_period)
        k = (Scope.PROJECT.value, pid, period.value, period_start(period, now))
        if k not in deltas:
            continue  # only late events for an earlier period: they count, but alert nobody now
        spent_after, limit = after[k], p.budget_micros
        _crossings(s, result, p.workspace_id, BudgetKind.PROJECT, pid, p.slug, spent_after - deltas[k], spent_after, limit, period, k[3], thresholds[p.workspace_id])
        if spent_after >= limit and ProjectStatus(p.status) is ProjectStatus.ACTIVE:
            proj = s.scalars(select(Project).where(Project.id == pid).with_for_update()).one()
            ws = s.get(Workspace, p.workspace_id)
            if pause_project_row(s, "system:budget", ws, proj, f"budget of {format_money(limit)} spent", by="budget"):
                result.paused.append(f"project:{p.slug}")


def _thresholds(s: Session, workspace_ids: set[int]) -> dict[int, list[int]]:
    return {w: list(t or []) for w, t in s.execute(select(Workspace.id, Workspace.alert_thresholds).where(Workspace.id.in_(sorted(workspace_ids))))}


def _check_workspace(s, workspace_id, spent_now, deltas, after, now, result) -> None:
    # The credit debit is the last row this batch locks, after every total.
    balance, funded, cap, cap_period, status, paused_reason, slug, thresholds = s.execute(
        update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(
            # only a funded pool is debited; before its first top-up spend is just counted
            credit_balance_micros=case((Workspace.credit_funded, Workspace.credit_balance_micros - spent_now), else_=Workspace.credit_balance_micros)
        )
        .returning(
            Workspace.credit_balance_micros,
            Workspace.credit_funded,
            Workspace.cap_micros,
            Workspace.cap_period,
            Workspace.status,
            Workspace.paused_reason,
            Workspace.slug,
            Workspace.alert_thresholds,
        )
    ).one()
    ws = None
    if cap is not None:
        period = Period(cap_period)
        k = (Scope.WORKSPACE.value, workspace_id, period.value, period_start(period, now))
        if k in deltas:
            spent_after = after[k]
            _crossings(s, result, workspace_id, BudgetKind.CAP, workspace_id, slug, spent_after - deltas[k], spent_after, cap, period, k[3], thresholds or [])
            if spent_after >= cap and WorkspaceStatus(status) is WorkspaceStatus.ACTIVE:
                ws = s.get(Workspace, workspace_id)
                if pause_workspace_row(s, "system:budget", ws, "cap"):
                    result.paused.append(f"workspace:{slug}")
                    status = WorkspaceStatus.PAUSED
    if funded:
        s.add(CreditEntry(workspace_id=workspace_id, kind="spend", amount_micros=-spent_now, balance_after_micros=balance, note="usage"))
        last_topup = s.execute(
            select(CreditEntry.balance_after_micros, CreditEntry.created_at).where(CreditEntry.workspace_id == workspace_id, CreditEntry.kind == "topup").order_by(CreditEntry.id.desc()).limit(1)
        ).one_or_none()
        if last_topup is not None:
            pool, since = last_topup
            _crossings(s, result, workspace_id, BudgetKind.CREDIT, workspace_id, slug, pool - balance - spent_now, pool - balance, pool, Period.NONE, since, thresholds or [])
        if balance <= 0 and WorkspaceStatus(status) is WorkspaceStatus.ACTIVE:
            ws = ws or s.get(Workspace, workspace_id)
            if pause_workspace_row(s, "system:budget", ws, "credit"):
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
        "post_alert",
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
    from store.budgets import resume_project_row, resume_workspace_row, spent

    for proj in s.scalars(select(Project).where(Project.status == ProjectStatus.PAUSED, Project.paused_by == "budget").with_for_update(skip_locked=True)):
        if proj.budget_micros is None or spent(s, Scope.PROJECT, proj.id, proj.budget_period, now) < proj.budget_micros:
            ws = s.get(Workspace, proj.workspace_id)
            resume_project_row(s, "system:clock", ws, proj, "a new budget period began")
            resumed[ws.id].append(f"project `{proj.slug}`")
    for ws in s.scalars(select(Workspace).where(Workspace.status == WorkspaceStatus.PAUSED, Workspace.paused_reason == "cap").with_for_update(skip_locked=True)):
        if ws.cap_micros is None or spent(s, Scope.WORKSPACE, ws.id, ws.cap_period, now) < ws.cap_micros:
            resume_workspace_row(s, "system:clock", ws, "a new cap period began")
            resumed[ws.id].append("the workspace cap")
    announced = []
    for workspace_id, what in resumed.items():
        outbox.emit(s, "announce_rollover", workspace_id=workspace_id, payload={"resumed": what})
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
