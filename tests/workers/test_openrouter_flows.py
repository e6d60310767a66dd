"""OpenRouter keys through the workers: crash, retry, failure and usage-sync paths, on the stub broker and on Redis."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.blocks.common import inert
from store import budgets, keys, totals, workspaces
from store.errors import InvalidInput
from store.models import Action, ApiKey, Project, UsageEvent, Workspace
from store.money import parse_money
from store.types import ActionStatus, Period, ProjectStatus, Scope
from tests import factories as f
from workers import maintenance
from workers.broker import RETRY_OPTIONS
from workers.perform import retry_delay_ms

KEYS = "/api/v1/keys"


# -- through the workers -------------------------------------------------------------


def openrouter_workspace(db, slug: str = "orx") -> int:
    return f.workspace(db, slug, "development", provider="openrouter")


def test_a_workspace_names_only_a_provider_purser_knows(sqlite_db):
    with pytest.raises(InvalidInput, match="not a key provider"):
        sqlite_db.run(workspaces.create_workspace, f.OPERATOR, slug="typo", provider="openruoter")
    ws = openrouter_workspace(sqlite_db)
    with sqlite_db.session() as s:
        assert s.get(Workspace, ws).provider == "openrouter"


def actions(db, kind: str) -> list[Action]:
    with db.session() as s:
        return list(s.scalars(select(Action).where(Action.kind == kind).order_by(Action.created_at)))


def stored_keys(db) -> list[ApiKey]:
    with db.session() as s:
        return list(s.scalars(select(ApiKey).order_by(ApiKey.id)))


def let_the_lease_lapse(db, action_id: str) -> None:
    """Time passes after a crash: the dead worker's lease runs out, and the sweeper's grace period too."""

    def lapse(s):
        a = s.get(Action, action_id)
        a.claimed_until = None
        a.run_after -= maintenance.SWEEP_AFTER + timedelta(seconds=1)

    db.run(lapse)


def recover(db, workers, action_id: str) -> None:
    workers.rt.faults.clear()
    let_the_lease_lapse(db, action_id)
    maintenance.sweep_outbox.fn()
    workers.settle()


def assert_one_live_key_for(fake, action_id: str, key: ApiKey) -> None:
    [at_openrouter] = fake.named(f"purser-{action_id}")
    assert at_openrouter["hash"] == key.provider_ref and not at_openrouter["disabled"]
    assert hashlib.sha256(fake.secrets[key.provider_ref].encode()).hexdigest() == key.secret_hash


def assert_no_secret_reached_slack(fake, slack_api, management_key: str) -> None:
    said = repr([c.args for c in slack_api.calls])
    assert management_key not in said
    assert not any(secret in said for secret in fake.secrets.values())


def provisioning_survives_a_crash_after_the_provider(db, workers, fake, slack_api) -> None:
    ws = openrouter_workspace(db)
    dev = f.member(db, ws)
    workers.rt.faults.add("provision_key.after_provider")
    db.run(keys.request_key, dev, ws, name="search-bot", limit_micros=parse_money("$20"))
    workers.settle()
    [crashed] = actions(db, "provision_key")
    assert (crashed.status, crashed.attempts) == (ActionStatus.PENDING, 1)
    [orphan] = fake.keys  # made at OpenRouter, its secret lost with the worker
    assert stored_keys(db) == []

    recover(db, workers, crashed.id)

    [done] = actions(db, "provision_key")
    assert (done.status, done.attempts) == (ActionStatus.DONE, 2)
    [key] = stored_keys(db)
    assert orphan not in fake.keys and list(fake.keys) == [key.provider_ref]
    assert_one_live_key_for(fake, done.id, key)
    assert fake.keys[key.provider_ref]["limit"] == 20
    assert any("is ready" in m.text for m in slack_api.channel_messages("D" + dev.slack_user_id[1:]))
    assert_no_secret_reached_slack(fake, slack_api, fake.management_key)


def refused_key_reaches_the_requester(db, workers, fake, slack_api, monkeypatch) -> None:
    ws = openrouter_workspace(db)
    dev = f.member(db, ws)
    management_key = fake.management_key
    monkeypatch.setattr(fake, "management_key", "sk-or-v1-the-operator-rotated-it")  # Purser still holds the old one
    db.run(keys.request_key, dev, ws, name="search-bot")
    workers.settle()
    [failed] = actions(db, "provision_key")
    assert failed.status is ActionStatus.FAILED
    assert "401" in failed.error and "OPENROUTER_MANAGEMENT_KEY" in failed.error
    [notice] = actions(db, "action_failed")
    assert notice.status is ActionStatus.DONE and notice.payload == {"action_id": failed.id}
    [dm] = slack_api.channel_messages("D" + dev.slack_user_id[1:])
    assert "could not make your key" in dm.text and inert(failed.error[:1500]) in dm.text
    assert fake.keys == {} and stored_keys(db) == []
    assert_no_secret_reached_slack(fake, slack_api, management_key)
    assert management_key not in failed.error


def test_provisioning_crashed_after_openrouter_made_the_key_leaves_one_live_key(db, stub_workers, fake, slack_api):
    provisioning_survives_a_crash_after_the_provider(db, stub_workers, fake, slack_api)


def test_rotation_crashed_after_openrouter_made_the_successor_leaves_one_successor(db, stub_workers, fake, slack_api):
    ws = openrouter_workspace(db)
    dev = f.member(db, ws)
    db.run(keys.request_key, dev, ws, name="search-bot")
    stub_workers.settle()
    [old] = stored_keys(db)
    stub_workers.rt.faults.add("rotate_key.after_provider")
    rotation = db.run(keys.rotate_key, dev, old.id)
    stub_workers.settle()
    [orphan] = [k["hash"] for k in fake.named(f"purser-{rotation.id}")]
    assert [k.id for k in stored_keys(db)] == [old.id]

    recover(db, stub_workers, rotation.id)

    [done] = actions(db, "rotate_key")
    assert (done.status, done.attempts) == (ActionStatus.DONE, 2)
    [_, new] = stored_keys(db)
    assert new.rotated_from_id == old.id
    assert orphan not in fake.keys
    assert set(fake.keys) == {old.provider_ref, new.provider_ref}  # the old key lives on through its grace period
    assert_one_live_key_for(fake, rotation.id, new)
    assert_no_secret_reached_slack(fake, slack_api, fake.management_key)


def test_rate_limited_creation_waits_as_told_and_makes_one_key(db, stub_workers, fake):
    ws = openrouter_workspace(db)
    dev = f.member(db, ws)
    fake.fail("POST", 429, retry_after=1, times=2)
    db.run(keys.request_key, dev, ws, name="search-bot")
    stub_workers.settle()
    [done] = actions(db, "provision_key")
    assert (done.status, done.attempts) == (ActionStatus.DONE, 3)
    [key] = stored_keys(db)
    assert list(fake.keys) == [key.provider_ref]
    assert_one_live_key_for(fake, done.id, key)
    posts = [c.at for c in fake.calls_to("POST", KEYS)]
    assert len(posts) == 3
    assert all(later - earlier >= 0.9 for earlier, later in zip(posts, posts[1:])), "Retry-After: 1 was not honoured"


def test_a_sweep_while_a_retry_waits_does_not_cut_the_retry_after_short(db, stub_workers, fake):
    """The sweeper hands out actions that look forgotten; one waiting for its retry is not."""
    ws = openrouter_workspace(db)
    dev = f.member(db, ws)
    fake.fail("POST", 429, retry_after=2, times=1)
    db.run(keys.request_key, dev, ws, name="search-bot")

    def released() -> bool:
        found = actions(db, "provision_key")
        return bool(found) and found[0].attempts == 1 and found[0].claimed_until is None

    deadline = time.monotonic() + 10
    while not released():
        assert time.monotonic() < deadline, "the first attempt never gave its lease back"
        time.sleep(0.02)
    maintenance.sweep_outbox.send(0)  # the most eager sweep: anything due at all, at once
    stub_workers.settle()
    [done] = actions(db, "provision_key")
    assert (done.status, done.attempts) == (ActionStatus.DONE, 2)
    first, second = [c.at for c in fake.calls_to("POST", KEYS)]
    assert second - first >= 2.0, "the sweep re-sent an action that was waiting for its Retry-After"


def test_openrouter_down_for_a_while_then_back_makes_one_key(db, stub_workers, fake):
    ws = openrouter_workspace(db)
    dev = f.member(db, ws)
    fake.fail("POST", 500)  # no Retry-After: the retries back off on their own
    fake.fail("POST", 503, retry_after=0, times=2)
    db.run(keys.request_key, dev, ws, name="search-bot")
    stub_workers.settle()
    [done] = actions(db, "provision_key")
    assert (done.status, done.attempts) == (ActionStatus.DONE, 4)
    [key] = stored_keys(db)
    assert list(fake.keys) == [key.provider_ref]
    assert_one_live_key_for(fake, done.id, key)


def test_openrouter_that_never_recovers_fails_the_action_and_tells_the_requester(db, stub_workers, fake, slack_api):
    ws = openrouter_workspace(db)
    dev = f.member(db, ws)
    fake.fail("POST", 503, retry_after=0, times=11)  # the first try and all ten retries
    stub_workers.broker.fail_fast_default = False  # the exhausted message is dead-lettered on purpose
    db.run(keys.request_key, dev, ws, name="search-bot")
    stub_workers.settle()
    [failed] = actions(db, "provision_key")
    assert failed.status is ActionStatus.FAILED and "OpenRouter answered 503" in failed.error, failed.error
    assert len(fake.calls_to("POST", KEYS)) == 11 and fake.keys == {}
    [dm] = slack_api.channel_messages("D" + dev.slack_user_id[1:])
    assert "could not make your key" in dm.text


def test_refused_management_key_fails_the_action_and_tells_the_requester(db, stub_workers, fake, slack_api, monkeypatch):
    refused_key_reaches_the_requester(db, stub_workers, fake, slack_api, monkeypatch)


def test_synced_usage_counts_increases_once_pauses_at_budget_and_resumes_when_raised(db, stub_workers, fake):
    ws = openrouter_workspace(db)
    search = f.project(db, ws, "search", budget=parse_money("$10"))
    dev = f.member(db, ws)
    db.run(keys.request_key, dev, ws, name="search-bot", project="search")
    db.run(keys.request_key, dev, ws, name="chat-bot")
    fake.add_key("made-in-the-dashboard", usage=3.0)  # not Purser's: ignored
    stub_workers.settle()
    by_name = {k.name: k for k in stored_keys(db)}
    searching, chatting = by_name["search-bot"].provider_ref, by_name["chat-bot"].provider_ref
    by_id = {k.id: name for name, k in by_name.items()}

    def sync():
        maintenance.sync_usage.fn()
        stub_workers.settle()

    def events():
        with db.session() as s:
            return sorted((by_id[k], amount) for k, amount in s.execute(select(UsageEvent.key_id, UsageEvent.amount_micros)))

    def spent(scope, scope_id):
        with db.session() as s:
            return totals.spent(s, scope, scope_id, Period.MONTHLY)

    def state():
        with db.session() as s:
            return s.get(Project, search).status

    fake.add_usage(searching, 2.5)
    sync()
    assert events() == [("search-bot", 2_500_000)]
    sync()
    assert events() == [("search-bot", 2_500_000)]

    fake.add_usage(searching, 1.25)
    fake.add_usage(chatting, 0.1)
    sync()
    assert events() == [("chat-bot", 100_000), ("search-bot", 1_250_000), ("search-bot", 2_500_000)]
    assert (spent(Scope.PROJECT, search), spent(Scope.WORKSPACE, ws)) == (3_750_000, 3_850_000)
    assert state() is ProjectStatus.ACTIVE and not fake.keys[searching]["disabled"]

    fake.add_usage(searching, 6.25)  # exactly the budget: reaching it counts
    sync()
    assert spent(Scope.PROJECT, search) == 10_000_000
    assert state() is ProjectStatus.PAUSED
    assert fake.keys[searching]["disabled"] is True
    assert fake.keys[chatting]["disabled"] is False  # other work carries on

    db.run(budgets.set_project_budget, f.OPERATOR, ws, "search", parse_money("$20"))
    stub_workers.settle()
    assert state() is ProjectStatus.ACTIVE
    assert fake.keys[searching]["disabled"] is False
    sync()
    assert len(events()) == 4  # pausing and resuming read no usage twice


def test_usage_sync_told_to_wait_retries_and_records_the_usage(db, stub_workers, fake):
    ws = openrouter_workspace(db)
    dev = f.member(db, ws)
    db.run(keys.request_key, dev, ws, name="search-bot")
    stub_workers.settle()
    [key] = stored_keys(db)
    fake.add_usage(key.provider_ref, 0.75)
    fake.fail("GET", 429, retry_after=0, times=2)
    listed = len(fake.calls_to("GET", KEYS))
    maintenance.sync_usage.send()
    stub_workers.settle()
    assert len(fake.calls_to("GET", KEYS)) - listed == 4  # two refused, then the page and the empty page that ends the listing
    with db.session() as s:
        assert s.scalars(select(UsageEvent.amount_micros)).all() == [750_000]


def test_usage_sync_refused_by_openrouter_gives_up_until_the_next_run(db, stub_workers, fake, monkeypatch):
    openrouter_workspace(db)
    monkeypatch.setattr(fake, "management_key", "sk-or-v1-the-operator-rotated-it")
    maintenance.sync_usage.send()
    stub_workers.settle()
    assert len(fake.calls_to("GET", KEYS)) == 1  # a refused management key is not retried


# -- the same key flows on Redis and PostgreSQL ----------------------------------------


def test_provisioning_crash_leaves_one_live_key_on_redis(pg_db, redis_workers, fake, slack_api):
    provisioning_survives_a_crash_after_the_provider(pg_db, redis_workers, fake, slack_api)


def test_refused_management_key_reaches_the_requester_on_redis(pg_db, redis_workers, fake, slack_api, monkeypatch):
    refused_key_reaches_the_requester(pg_db, redis_workers, fake, slack_api, monkeypatch)


def test_a_short_retry_after_never_shortens_the_backoff(monkeypatch):
    monkeypatch.setitem(RETRY_OPTIONS, "min_backoff", 1_000)
    monkeypatch.setitem(RETRY_OPTIONS, "max_backoff", 300_000)
    # A provider saying "1 s" on every try would otherwise use up ten retries in ten seconds of an outage.
    waits = [retry_delay_ms(attempt, 1.0) for attempt in range(1, 11)]
    assert waits[0] >= 1_000 and all(later > earlier for earlier, later in zip(waits[4:], waits[5:8]))
    assert sum(waits) / 1000 > 300  # ten tries outlast a provider's minute-long outage several times over
    assert retry_delay_ms(1, 30.0) >= 30_000  # a longer Retry-After is honoured as given
    assert retry_delay_ms(20, None) <= 300_000 * 1.2
