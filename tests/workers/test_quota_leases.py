"""Quota leases against the fake OpenRouter: spend that cannot pass a budget between syncs.

The fake refuses a key past its own limit at once, as OpenRouter does; Purser sets each
key's limit to its usage plus its lease. Fifty threads spend through twenty keys at once
with no usage sync running; only the poll that reads the keys that spend (and tops up the
ones near the end of their lease) runs beside them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import select

from store import budgets, keys, totals
from store.models import ApiKey, Project
from store.money import parse_money
from store.types import Period, ProjectStatus, Scope
from tests import factories as f
from workers import quota

MODEL = "purser/penny"  # the fake's catalogue model; each call here costs $0.25 (fake.cost_of)
COST = 0.25
CALLS = 400  # $100 of them


def spend(client: httpx.Client, url: str, secret: str) -> int:
    answer = client.post(f"{url}/api/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"}, json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    return answer.status_code


def limits(fake, refs) -> dict[str, float | None]:
    return {ref: fake.keys[ref]["limit"] for ref in refs}


def usage(fake, refs) -> float:
    return round(sum(fake.keys[ref]["usage"] for ref in refs), 6)


def project_state(db, project_id):
    with db.session() as s:
        proj = s.get(Project, project_id)
        return proj.status, totals.spent(s, Scope.PROJECT, project_id, Period.MONTHLY)


def test_fifty_threads_through_twenty_keys_end_exactly_at_a_hundred_dollar_budget(db, stub_workers, fake):
    stub_workers.rt.poll_intervals = (0, 0)  # read the spending keys as often as the poll runs
    ws = f.workspace(db, "leases", "development", provider="openrouter")
    search = f.project(db, ws, "search", budget=parse_money("$100"))
    dev = f.member(db, ws)
    for i in range(20):
        db.run(keys.request_key, dev, ws, name=f"bot-{i}", project="search")
    stub_workers.settle()
    with db.session() as s:
        made = list(s.scalars(select(ApiKey).where(ApiKey.workspace_id == ws).order_by(ApiKey.id)))
    refs = [k.provider_ref for k in made]
    secrets = [fake.secrets[ref] for ref in refs]
    assert len(refs) == 20
    fake.cost_of[MODEL] = COST
    # Every key leased a share; together exactly what remains of the budget.
    assert round(sum(limits(fake, refs).values()), 6) == 100.0

    rt = stub_workers.rt
    stop = threading.Event()
    outcomes: Counter = Counter()
    lock = threading.Lock()
    refused_since: dict[int, float] = {}  # key -> when it was first refused since it last spent
    waits: list[float] = []  # how long each refused key waited for its top-up
    patches_before, lists_before, reads_before = len(fake.calls_to("PATCH")), len(fake.calls_to("GET", "/api/v1/keys")), len(fake.calls_to("GET"))
    polls = Counter()

    def poller():
        while not stop.is_set():
            topped = quota.poll(rt)
            polls["polls"] += 1
            polls["top-ups"] += len(topped)
            time.sleep(0.01)

    def spender(n: int):
        # Keys 0-9 are busy (five threads each); keys 10-19 see one call in ten.
        with httpx.Client(timeout=10) as client:
            calls = 0
            while not stop.is_set():
                calls += 1
                k = 10 + n % 10 if calls % 10 == 0 else n % 10
                status = spend(client, fake.url, secrets[k])
                with lock:
                    outcomes[status] += 1
                    if status == 200 and k in refused_since:
                        waits.append(time.monotonic() - refused_since.pop(k))
                    elif status == 402:
                        refused_since.setdefault(k, time.monotonic())
                if status != 200:
                    time.sleep(0.05)  # refused: a client backs off before trying again

    threads = [threading.Thread(target=poller)] + [threading.Thread(target=spender, args=(n,)) for n in range(50)]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and project_state(db, search)[1] < parse_money("$100"):
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    took = time.monotonic() - started
    stub_workers.settle()

    # What OpenRouter charged: never past the budget, and nothing stranded below it.
    assert usage(fake, refs) == 100.0
    assert outcomes[200] == CALLS
    status, spent = project_state(db, search)
    assert spent == parse_money("$100")
    assert status is ProjectStatus.PAUSED
    assert all(fake.keys[ref]["disabled"] for ref in refs)
    waits.sort()
    lists = len(fake.calls_to("GET", "/api/v1/keys")) - lists_before
    print(
        f"\nleases: {CALLS} calls of ${COST} in {took:.1f}s by 50 threads; {len(waits)} waits for a top-up "
        f"(median {waits[len(waits) // 2] if waits else 0:.2f}s, longest {waits[-1] if waits else 0:.2f}s), {len(refused_since)} keys still refused at the end; "
        f"{polls['polls']} polls ({lists} list calls, {len(fake.calls_to('GET')) - reads_before - lists} single-key reads), {polls['top-ups']} top-ups, "
        f"{len(fake.calls_to('PATCH')) - patches_before} PATCH calls; other refusals {dict((k, v) for k, v in outcomes.items() if k not in (200, 402))}"
    )

    # A raise lets spend through again at once: no poll, no sync.
    db.run(budgets.set_project_budget, f.OPERATOR, ws, "search", parse_money("$150"))
    stub_workers.settle()
    assert project_state(db, search)[0] is ProjectStatus.ACTIVE
    assert round(sum(limits(fake, refs).values()) - usage(fake, refs), 6) == 50.0
    with httpx.Client(timeout=10) as client:
        assert spend(client, fake.url, secrets[7]) == 200


@pytest.mark.parametrize("budget", ["$10"])
def test_a_key_that_spends_gets_the_larger_share_at_the_next_top_up(db, stub_workers, fake, budget):
    stub_workers.rt.poll_intervals = (0, 0)
    ws = f.workspace(db, "shares", "development", provider="openrouter")
    f.project(db, ws, "search", budget=parse_money(budget))
    dev = f.member(db, ws)
    for name in ("busy", "idle"):
        db.run(keys.request_key, dev, ws, name=name, project="search")
    stub_workers.settle()
    with db.session() as s:
        busy, idle = (s.scalars(select(ApiKey.provider_ref).where(ApiKey.name == n)).one() for n in ("busy", "idle"))
    assert limits(fake, [busy, idle]) == {busy: 5.0, idle: 5.0}
    fake.add_usage(busy, 4.0)  # most of its lease
    assert quota.poll(stub_workers.rt) == [ws]
    # $6 remains: four parts to the key that spends, one to the idle one, in $0.25 pieces
    left = {ref: round(fake.keys[ref]["limit"] - fake.keys[ref]["usage"], 6) for ref in (busy, idle)}
    assert left == {busy: 5.0, idle: 1.0}


@pytest.mark.calendar  # budgets live on periods: month ends, leap days and new year too
def test_a_keys_limit_at_openrouter_follows_its_budget_after_creation(db, stub_workers, fake):
    ws = f.workspace(db, "follows", "development", provider="openrouter")
    f.project(db, ws, "search", budget=parse_money("$10"))
    dev = f.member(db, ws)
    db.run(keys.request_key, dev, ws, name="bot", project="search")
    stub_workers.settle()
    with db.session() as s:
        ref = s.scalars(select(ApiKey.provider_ref)).one()
    assert fake.keys[ref]["limit"] == 10.0
    for budget, limit in (("$25", 25.0), ("$4", 4.0), ("$4.10", 4.1)):
        db.run(budgets.set_project_budget, f.OPERATOR, ws, "search", parse_money(budget))
        stub_workers.settle()
        assert fake.keys[ref]["limit"] == limit, budget
    assert [c.body for c in fake.calls_to("PATCH", f"/api/v1/keys/{ref}")][-3:] == [{"limit": 25.0, "limit_reset": None}, {"limit": 4.0, "limit_reset": None}, {"limit": 4.1, "limit_reset": None}]
