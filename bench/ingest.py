"""Usage ingest against a bare INSERT; budget evaluation against the size of the history.

(1) 100,000 usage events through ``ingest_usage`` (``Database.run``, batches of 1,000 unless --batch)
    against a plain batched INSERT of the same rows into a bare table, alternately.
(2) ``evaluate_budgets`` for 10,000 budgeted projects with 100,000 and with 1,000,000
    events of history, against a naive SUM over the history.

Both are ratios of two things measured side by side in one run, on fresh PostgreSQL
databases that are migrated first and dropped at the end. docs/benchmarks.md says what
is measured and keeps the last figures.

    .venv/bin/python bench/ingest.py [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import math
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ ships with the source, not the package

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, func, insert, select, text  # noqa: E402

from bench.common import alternating, arguments, backend_cpu, fresh_database, load_text, parse, production_workspace, provision_approved, used_since  # noqa: E402
from store import budgets, keys, members  # noqa: E402
from store.db import Database  # noqa: E402
from store.models import ApiKey, Project, UsageEvent, Workspace  # noqa: E402
from store.periods import period_start  # noqa: E402
from store.permissions import Actor  # noqa: E402
from store.secrets import Cipher, display_prefix, hash_secret, mint_local_secret, use_cipher  # noqa: E402
from store.types import Period, UTCDateTime  # noqa: E402
from store.ingest import MAX_BATCH, UsageIn, ingest_usage  # noqa: E402

BATCH = 1_000  # what a gateway flushing every few seconds, or one page of a provider sync, sends
TARGET = 0.7  # plain INSERT wall time / ingest wall time, at least (issue 17)
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "llama-3.1-70b-instruct")
MAX_EVENT_MICROS = 20_000  # up to $0.02 an event
HISTORY_DAYS = 90

# The baseline: the columns of usage_events and nothing else — no key, no index, no
# constraint, nothing computed. What the database costs for the rows alone.
bare = Table(
    "bench_bare_usage",
    MetaData(),
    Column("external_id", String(200)),
    Column("workspace_id", BigInteger),
    Column("project_id", BigInteger),
    Column("key_id", BigInteger),
    Column("amount_micros", BigInteger),
    Column("model", String(120)),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("occurred_at", UTCDateTime()),
    Column("ingested_at", UTCDateTime()),
)


class Cpu:
    """CPU seconds spent by this process and by the server backends of one database.

    On a shared machine a side's wall time depends on what else runs; its CPU much less.
    The server's share is read from /proc, so it is measured only when PostgreSQL runs
    on this machine.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def measure(self, into: dict[str, list[float]]) -> Iterator[None]:
        before, client, wall = backend_cpu(self.db), time.process_time(), time.perf_counter()
        yield
        wall, client, after = time.perf_counter() - wall, time.process_time() - client, backend_cpu(self.db)
        into.setdefault("wall", []).append(wall)
        into.setdefault("client", []).append(client)
        if before is not None and after is not None:
            into.setdefault("server", []).append(sum(used_since(before, after).values()))


def medians(measured: dict[str, list[float]]) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in measured.items()}


def chunks(items: list, size: int) -> Iterator[list]:
    return (items[i : i + size] for i in range(0, len(items), size))


def usage_events(key_ids: list[int], n: int, start: datetime, end: datetime, seed: int) -> list[UsageIn]:
    """``n`` events on random keys, in time order as a feed delivers them."""
    rnd = random.Random(seed)
    span = (end - start).total_seconds()
    times = sorted(rnd.random() * span for _ in range(n))
    return [
        UsageIn(
            external_id=f"gen-{seed}-{i:08d}",
            key_id=rnd.choice(key_ids),
            amount_micros=rnd.randint(1, MAX_EVENT_MICROS),
            occurred_at=start + timedelta(seconds=t),
            model=rnd.choice(MODELS),
            prompt_tokens=rnd.randint(10, 4_000),
            completion_tokens=rnd.randint(1, 1_000),
        )
        for i, t in enumerate(times)
    ]


def ingest_all(db: Database, events: list[UsageIn]) -> None:
    accepted = sum(len(db.run(ingest_usage, batch).accepted) for batch in chunks(events, BATCH))
    assert accepted == len(events), f"ingest accepted {accepted} of {len(events)} events"


def clear_usage(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("TRUNCATE usage_events, spend_totals, spend_hours, alerts_sent"))
        conn.execute(text("DELETE FROM actions WHERE kind = 'post_alert'"))


# --- state, built through the store's operations -------------------------------------------

_users = iter(range(1, 10**9))


def workspace_with_admin(db: Database, slug: str) -> tuple[int, Actor]:
    admin = Actor.slack(f"U{next(_users):08d}")
    return production_workspace(db, slug, [admin.slack_user_id]), admin


def add_projects(db: Database, admin: Actor, ws_id: int, slugs: list[str], budget_micros: int) -> None:
    for chunk in chunks(slugs, 500):
        db.run(lambda s, chunk=chunk: [budgets.create_project(s, admin, ws_id, slug, budget_micros=budget_micros) for slug in chunk])


def add_keys(db: Database, admin: Actor, ws_id: int, projects: list[str]) -> None:
    """One key per entry of ``projects``: asked for by an admin (approved at once), then provisioned."""
    for chunk in chunks(list(enumerate(projects)), 500):
        db.run(lambda s, chunk=chunk: [keys.request_key(s, admin, ws_id, name=f"key-{i}", project=p) for i, p in chunk])
        db.run(provision_approved, ws_id)


def key_owners(db: Database, ws_ids: list[int]) -> dict[int, tuple[int, int | None]]:
    with db.session() as s:
        return {k: (w, p) for k, w, p in s.execute(select(ApiKey.id, ApiKey.workspace_id, ApiKey.project_id).where(ApiKey.workspace_id.in_(ws_ids)))}


# --- (1) ingest against a bare INSERT --------------------------------------------------------


def ingest_round(db: Database, events: list[UsageIn], into: dict[str, list[float]]) -> None:
    clear_usage(db)
    with Cpu(db).measure(into):
        ingest_all(db, events)


def plain_round(db: Database, rows: list[dict], into: dict[str, list[float]]) -> None:
    with db.engine.begin() as conn:
        bare.drop(conn, checkfirst=True)
        bare.create(conn)
    with Cpu(db).measure(into):
        for batch in chunks(rows, BATCH):
            with db.engine.begin() as conn:  # a transaction a batch, as Database.run has
                conn.execute(insert(bare), batch)
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(bare)) == len(rows)


def bench_ingest(db: Database, n_events: int, rounds: int) -> dict:
    spaces = [workspace_with_admin(db, f"ingest-{w}") for w in range(4)]
    for w, (ws_id, admin) in enumerate(spaces):
        slugs = [f"p{w}-{p:02d}" for p in range(25)]
        # Each project spends about 2/3 of its budget, so the 50 % alerts fire during the run.
        add_projects(db, admin, ws_id, slugs, budget_micros=n_events // 100 * MAX_EVENT_MICROS // 2 * 3 // 2)
        add_keys(db, admin, ws_id, [slug for slug in slugs for _ in range(10)])
    owners = key_owners(db, [w for w, _ in spaces])
    now = datetime.now(timezone.utc)
    events = usage_events(sorted(owners), n_events, period_start(Period.MONTHLY, now), now - timedelta(minutes=1), seed=1)
    rows = [
        {
            "external_id": e.external_id,
            "workspace_id": owners[e.key_id][0],
            "project_id": owners[e.key_id][1],
            "key_id": e.key_id,
            "amount_micros": e.amount_micros,
            "model": e.model,
            "prompt_tokens": e.prompt_tokens,
            "completion_tokens": e.completion_tokens,
            "occurred_at": e.occurred_at,
            "ingested_at": now,
        }
        for e in events
    ]
    measured: dict[str, dict[str, list[float]]] = {"ingest": {}, "plain": {}}
    sides = [("ingest", lambda: ingest_round(db, events, measured["ingest"])), ("plain", lambda: plain_round(db, rows, measured["plain"]))]
    # Alternate who goes first, so neither always follows the other's checkpoint and vacuum.
    for r, order in alternating(rounds, sides):
        for name, run in order:
            run()
            m = measured[name]
            server = f", server CPU {m['server'][-1]:.2f} s" if "server" in m else ""
            print(f"  round {r + 1} {name:6} {m['wall'][-1]:6.2f} s (client CPU {m['client'][-1]:.2f} s{server})", flush=True)
    with db.engine.begin() as conn:
        bare.drop(conn)
        alerts = conn.scalar(text("SELECT count(*) FROM alerts_sent"))
        # Fast and wrong would be no use: every running total the last round left must be
        # the sum of its events, by the rule (see BULK_LOAD), and no total missing or extra.
        wrong = conn.scalar(text(TOTALS_DISAGREE))
        wrong_hours = conn.scalar(text(HOURS_DISAGREE))
    assert wrong == 0, f"{wrong} spend totals disagree with the usage events ingested"
    assert wrong_hours == 0, f"{wrong_hours} hourly rows disagree with the usage events ingested"
    return {
        "events": n_events,
        "keys": len(owners),
        "projects": 100,
        "workspaces": len(spaces),
        "alerts": alerts,
        "rounds": {name: m["wall"] for name, m in measured.items()},
        "ingest": medians(measured["ingest"]),
        "plain": medians(measured["plain"]),
    }


# --- (2) budget evaluation against history ---------------------------------------------------


def write_projects_and_keys(db: Database, ws_id: int, admin: Actor, n: int, budget_micros: int) -> None:
    """``n`` budgeted projects with one key each, written as rows.

    Through the operations each key costs some thirty statements (its request, approval,
    provisioning and their audit events): minutes for ten thousand. The evaluation reads
    only the rows, so here they are written directly, with the models' own defaults.
    """
    owner = db.run(lambda s: members.find_member(s, ws_id, admin.slack_user_id).id)
    with db.engine.begin() as conn:
        conn.execute(insert(Project.__table__), [{"workspace_id": ws_id, "slug": f"w{ws_id}-{i:05d}", "budget_micros": budget_micros, "budget_period": Period.MONTHLY} for i in range(n)])
        project_ids = conn.scalars(select(Project.id).where(Project.workspace_id == ws_id).order_by(Project.id)).all()
        secrets = [mint_local_secret() for _ in project_ids]
        conn.execute(
            insert(ApiKey.__table__),
            [
                {"workspace_id": ws_id, "member_id": owner, "project_id": p, "name": f"key-{i}", "prefix": display_prefix(k), "secret_hash": hash_secret(k), "provider": "local"}
                for i, (p, k) in enumerate(zip(project_ids, secrets))
            ],
        )


# Raw events straight into usage_events, and their spend totals by the rule ingest
# applies: every event adds to its project's and its workspace's total for each tracked
# period that contains it (the UTC day, the week from Monday, the month, and the
# lifetime), and to its key's total for the key's limit period. One statement, so the
# history and the totals arrive together.
BULK_LOAD = """
WITH k AS (
    SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, workspace_id, project_id, limit_period
    FROM api_keys WHERE workspace_id = ANY(:ws)
), loaded AS (
    INSERT INTO usage_events (external_id, workspace_id, project_id, key_id, amount_micros, model,
                              prompt_tokens, completion_tokens, occurred_at, ingested_at)
    SELECT 'bulk-' || e.g, k.workspace_id, k.project_id, k.id, 1 + floor(random() * :max_micros)::bigint,
           (ARRAY['gpt-4o-mini', 'gpt-4o', 'claude-3-5-sonnet', 'llama-3.1-70b-instruct'])[1 + e.g % 4],
           10 + e.g % 3990, 1 + e.g % 999, :start + random() * (:end - :start), :now
    FROM (SELECT g, floor(random() * :keys)::bigint AS kn FROM generate_series(0, :n - 1) AS g) AS e
    JOIN k ON k.n = e.kn
    RETURNING key_id, project_id, workspace_id, amount_micros, occurred_at
), daily AS (
    SELECT key_id, project_id, workspace_id, date_trunc('day', occurred_at) AS day, sum(amount_micros) AS amount
    FROM loaded GROUP BY 1, 2, 3, 4
), scoped AS (
    SELECT 'key' AS scope, key_id AS scope_id, k.limit_period AS period, day, amount FROM daily JOIN k ON k.id = daily.key_id
    UNION ALL SELECT 'project', project_id, p.period, day, amount FROM daily CROSS JOIN (VALUES ('daily'), ('weekly'), ('monthly'), ('none')) AS p(period) WHERE project_id IS NOT NULL
    UNION ALL SELECT 'workspace', workspace_id, p.period, day, amount FROM daily CROSS JOIN (VALUES ('daily'), ('weekly'), ('monthly'), ('none')) AS p(period)
)
INSERT INTO spend_totals (scope, scope_id, period, period_start, amount_micros)
SELECT scope, scope_id, period,
       CASE period WHEN 'daily' THEN day WHEN 'weekly' THEN date_trunc('week', day)
                   WHEN 'monthly' THEN date_trunc('month', day) ELSE TIMESTAMP '1970-01-01' END,
       sum(amount)
FROM scoped
GROUP BY 1, 2, 3, 4
ON CONFLICT (scope, scope_id, period, period_start)
DO UPDATE SET amount_micros = spend_totals.amount_micros + excluded.amount_micros
"""


# The running totals the events in usage_events add up to, by the rule above, against
# those in spend_totals: how many differ, are missing or are extra.
TOTALS_DISAGREE = """
WITH daily AS (
    SELECT e.key_id, k.limit_period, e.project_id, e.workspace_id, date_trunc('day', e.occurred_at) AS day, sum(e.amount_micros) AS amount
    FROM usage_events e JOIN api_keys k ON k.id = e.key_id WHERE e.amount_micros <> 0 GROUP BY 1, 2, 3, 4, 5
), scoped AS (
    SELECT 'key' AS scope, key_id AS scope_id, limit_period AS period, day, amount FROM daily
    UNION ALL SELECT 'project', project_id, p.period, day, amount FROM daily CROSS JOIN (VALUES ('daily'), ('weekly'), ('monthly'), ('none')) AS p(period) WHERE project_id IS NOT NULL
    UNION ALL SELECT 'workspace', workspace_id, p.period, day, amount FROM daily CROSS JOIN (VALUES ('daily'), ('weekly'), ('monthly'), ('none')) AS p(period)
), expected AS (
    SELECT scope, scope_id, period,
           CASE period WHEN 'daily' THEN day WHEN 'weekly' THEN date_trunc('week', day)
                       WHEN 'monthly' THEN date_trunc('month', day) ELSE TIMESTAMP '1970-01-01' END AS period_start,
           sum(amount) AS amount
    FROM scoped GROUP BY 1, 2, 3, 4
)
SELECT count(*) FROM expected FULL JOIN spend_totals t USING (scope, scope_id, period, period_start)
WHERE expected.amount IS DISTINCT FROM t.amount_micros
"""


# The hourly rows the events add up to (spend, events and tokens per workspace, UTC hour,
# key and model, with the key's project) against those in spend_hours.
HOURS_DISAGREE = """
WITH expected AS (
    SELECT workspace_id, date_trunc('hour', occurred_at) AS hour, key_id, coalesce(model, '') AS model, max(project_id) AS project_id,
           sum(amount_micros) AS amount_micros, count(*) AS events, coalesce(sum(prompt_tokens), 0) AS prompt_tokens, coalesce(sum(completion_tokens), 0) AS completion_tokens
    FROM usage_events GROUP BY 1, 2, 3, 4
)
SELECT count(*) FROM expected FULL JOIN spend_hours h USING (workspace_id, hour, key_id, model)
WHERE (expected.project_id, expected.amount_micros, expected.events, expected.prompt_tokens, expected.completion_tokens)
      IS DISTINCT FROM (h.project_id, h.amount_micros, h.events, h.prompt_tokens, h.completion_tokens)
"""


def naive_utc(at: datetime) -> datetime:
    return at.astimezone(timezone.utc).replace(tzinfo=None)  # as store.types.UTCDateTime stores it


def bulk_load(db: Database, ws_ids: list[int], n: int, start: datetime, end: datetime, now: datetime) -> float:
    with db.session() as s:
        key_count = s.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.workspace_id.in_(ws_ids)))
    params = {"ws": ws_ids, "n": n, "keys": key_count, "max_micros": MAX_EVENT_MICROS, "start": naive_utc(start), "end": naive_utc(end), "now": naive_utc(now)}
    t = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(text("SELECT setseed(0.42)"))
        conn.execute(text(BULK_LOAD), params)
    return time.perf_counter() - t


def build_small_history(db: Database, n_projects: int, n_events: int, now: datetime) -> list[int]:
    """Workspaces of 1,000 budgeted projects, one key each, and ``n_events`` through ingest."""
    spaces = [workspace_with_admin(db, f"budgets-{w}") for w in range(n_projects // 1_000)]
    for ws_id, admin in spaces:
        write_projects_and_keys(db, ws_id, admin, 1_000, budget_micros=50 * 1_000_000)
    ws_ids = [w for w, _ in spaces]
    events = usage_events(sorted(key_owners(db, ws_ids)), n_events, now - timedelta(days=HISTORY_DAYS), now - timedelta(minutes=1), seed=2)
    t = time.perf_counter()
    ingest_all(db, events)
    print(f"  ingested {n_events:,} events in {time.perf_counter() - t:.1f} s", flush=True)
    return ws_ids


def compare_evaluations(histories: dict[str, Database], ws_ids: list[int], now: datetime, repeats: int) -> dict:
    month = period_start(Period.MONTHLY, now)

    def evaluate(s):
        return {line.name: line.spent_micros for w in ws_ids for line in budgets.evaluate_budgets(s, s.get(Workspace, w), now) if line.kind == "project"}

    def naive(s):
        # The same answer as evaluate_budgets, with this month's spend summed from the history.
        spent = {}
        for w in ws_ids:
            projects = s.scalars(select(Project).where(Project.workspace_id == w)).all()
            by_project = select(UsageEvent.project_id, func.sum(UsageEvent.amount_micros)).where(UsageEvent.workspace_id == w, UsageEvent.occurred_at >= month)
            sums = dict(s.execute(by_project.group_by(UsageEvent.project_id)).all())
            spent.update({p.slug: int(sums.get(p.id, 0)) for p in projects})
        return spent

    facts = {}
    for label, db in histories.items():
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE usage_events, spend_totals"))
            events, totals_rows = conn.execute(text("SELECT (SELECT count(*) FROM usage_events), (SELECT count(*) FROM spend_totals)")).one()
        # The running totals and the history must tell the same story before either is timed.
        totals, summed = db.run(evaluate), db.run(naive)
        assert totals == summed, f"{label}: spend totals disagree with the usage history"
        facts[label] = {"events": events, "totals_rows": totals_rows, "spending": sum(1 for v in totals.values() if v), "evaluate": {}, "naive": {}}
        print(f"  {label}: {events:,} events, {totals_rows:,} spend totals, {facts[label]['spending']:,} projects spent this month", flush=True)
    # Side by side: each repeat times both histories, one after the other, so a busy
    # moment of the machine falls on both rather than on one.
    for _ in range(repeats):
        for what, op in (("evaluate", evaluate), ("naive", naive)):
            for label, db in histories.items():
                with Cpu(db).measure(facts[label][what]):
                    db.run(op)
    for f in facts.values():
        f["evaluate"], f["naive"] = medians(f["evaluate"]), medians(f["naive"])
    return facts


def bench_budgets(server_url: str, db: Database, stack: ExitStack, n_history: int, n_projects: int) -> dict:
    now = datetime.now(timezone.utc)
    # The first tenth of the history arrives as all usage does: through ingest, in batches.
    small_events = n_history // 10
    ws_ids = build_small_history(db, n_projects, small_events, now)
    db.dispose()  # a database being copied may have no one connected
    large = Database(stack.enter_context(fresh_database(server_url, template=db.url))[0])
    stack.callback(large.dispose)
    # The rest is loaded with SQL, its totals by the same rule; see BULK_LOAD.
    load_s = bulk_load(large, ws_ids, n_history - small_events, now - timedelta(days=HISTORY_DAYS), now - timedelta(minutes=1), now)
    print(f"  copied that database and bulk-loaded {n_history - small_events:,} more events with their totals in {load_s:.1f} s", flush=True)
    facts = compare_evaluations({"small": db, "large": large}, ws_ids, now, repeats=5)
    return {"projects": n_projects, "workspaces": len(ws_ids), **facts}


# --- the report ------------------------------------------------------------------------------


def cpu(m: dict[str, float]) -> float | None:
    return m["client"] + m["server"] if "server" in m else None


def report(i: dict, b: dict, load: tuple[tuple[float, ...], tuple[float, ...]], elapsed: float) -> None:
    ing, pl = i["ingest"], i["plain"]
    small, large = b["small"], b["large"]

    def secs(x: float | None, unit: str = "s") -> str:
        return "n/a" if x is None else (f"{x:.2f} s" if unit == "s" else f"{x * 1000:.0f} ms")

    def ratio(a: float | None, c: float | None) -> str:
        return "n/a" if a is None or c is None else f"{a / c:.2f}"

    def cpu_split(m: dict[str, float], unit: str = "s") -> str:
        return "n/a" if "server" not in m else f"{secs(m['client'], unit)} + {secs(m['server'], unit)}"

    rows = [
        (f"Ingest: {i['events']:,} events in batches of {BATCH:,} ({i['keys']:,} keys, {i['projects']} projects, {i['alerts']} alerts)", "wall", "events/s", "CPU client + server"),
        ("  ingest_usage through Database.run", secs(ing["wall"]), f"{i['events'] / ing['wall']:,.0f}", cpu_split(ing)),
        ("  plain INSERT into a bare table", secs(pl["wall"]), f"{i['events'] / pl['wall']:,.0f}", cpu_split(pl)),
        (f"  plain / ingest, wall time (target >= {TARGET})", ratio(pl["wall"], ing["wall"]), "", ""),
        ("  plain / ingest, CPU", ratio(cpu(pl), cpu(ing)), "", ""),
        (f"Budget evaluation: {b['projects']:,} budgeted projects in {b['workspaces']} workspaces", f"{small['events']:,} ev", f"{large['events']:,} ev", "large / small"),
        ("  spend_totals rows", f"{small['totals_rows']:,}", f"{large['totals_rows']:,}", ratio(large["totals_rows"], small["totals_rows"])),
        ("  evaluate_budgets (running totals), wall", secs(small["evaluate"]["wall"], "ms"), secs(large["evaluate"]["wall"], "ms"), ratio(large["evaluate"]["wall"], small["evaluate"]["wall"])),
        ("  evaluate_budgets, CPU client + server", secs(cpu(small["evaluate"]), "ms"), secs(cpu(large["evaluate"]), "ms"), ratio(cpu(large["evaluate"]), cpu(small["evaluate"]))),
        *(
            (f"    of which {side}", secs(small["evaluate"].get(side), "ms"), secs(large["evaluate"].get(side), "ms"), ratio(large["evaluate"].get(side), small["evaluate"].get(side)))
            for side in ("client", "server")
        ),
        ("  naive SUM over usage_events, wall", secs(small["naive"]["wall"], "ms"), secs(large["naive"]["wall"], "ms"), ratio(large["naive"]["wall"], small["naive"]["wall"])),
        ("  naive SUM, CPU client + server", secs(cpu(small["naive"]), "ms"), secs(cpu(large["naive"]), "ms"), ratio(cpu(large["naive"]), cpu(small["naive"]))),
    ]
    print("\nMedians; the evaluate_budgets large / small ratio should be about 1.")
    for label, a, c, d in rows:
        print(f"{label:<92}{a:>11}{c:>13}{d:>22}")
    print(f"\ningest rounds: {', '.join(f'{t:.2f}' for t in i['rounds']['ingest'])} s; plain rounds: {', '.join(f'{t:.2f}' for t in i['rounds']['plain'])} s")
    print(f"{os.cpu_count()} cores; load average {load_text(load[0], 1, ' / ')} at start, {load_text(load[1], 1, ' / ')} at end; whole run {elapsed:.0f} s")


def verdict(i: dict) -> tuple[float, bool]:
    """The headline: plain INSERT wall time over ingest's (medians), cut (not rounded) to two places, and whether it meets the target."""
    r = i["plain"]["wall"] / i["ingest"]["wall"]
    return math.floor(r * 100) / 100, r >= TARGET


def main(argv: list[str] | None = None) -> int:
    global BATCH  # --batch sets it for both sides
    parser = arguments(__doc__, databases="databases of its own")
    parser.add_argument("--events", type=int, default=100_000, help="events per ingest round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of ingest and plain insert")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"events a batch, both sides (default {BATCH:,}; ingest takes at most {MAX_BATCH:,})")
    parser.add_argument("--history", type=int, default=1_000_000, help="usage events in the large history (the small one holds a tenth)")
    parser.add_argument("--projects", type=int, default=10_000, help="budgeted projects to evaluate, in workspaces of 1,000")
    args = parse(parser, argv)
    if not 1 <= args.batch <= MAX_BATCH:
        parser.error(f"--batch must be from 1 to {MAX_BATCH:,}: ingest refuses bigger batches")
    BATCH = args.batch
    use_cipher(Cipher(Cipher.generate()))
    started, load_at_start = time.perf_counter(), os.getloadavg()
    with ExitStack() as stack:
        db = Database(stack.enter_context(fresh_database(args.database_url))[0])
        stack.callback(db.dispose)
        print(f"ingest: {args.rounds} rounds of {args.events:,} events", flush=True)
        ingest = bench_ingest(db, args.events, args.rounds)
        clear_usage(db)
        print(f"budgets: {args.projects:,} projects, histories of {args.history // 10:,} and {args.history:,} events", flush=True)
        evaluation = bench_budgets(args.database_url, db, stack, args.history, args.projects)
    report(ingest, evaluation, (load_at_start, os.getloadavg()), time.perf_counter() - started)
    r, met = verdict(ingest)
    print(f"ingest: ratio {r:.2f} (target {TARGET}) {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
