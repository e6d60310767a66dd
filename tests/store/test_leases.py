"""Leased keys in the store: the warnings and the end told once each, extending under the key policy, and the standing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from store import approvals, keys, leases
from store.authz import decide, load_key_state
from store.decisions import decide_request
from store.errors import Conflict, InvalidInput, NotFound
from store.models import Action, ApiKey, AuditEvent
from store.models_leases import KeyLease
from store.money import parse_money
from store.secrets import hash_secret
from store.types import ActionKind, RequestState, Role, utcnow
from tests import factories as f


def notices(db) -> list[tuple[int, str]]:
    with db.session() as s:
        found = s.scalars(select(Action).where(Action.kind == ActionKind.LEASE_NOTICE.value).order_by(Action.created_at))
        return [(a.payload["key_id"], a.payload["kind"]) for a in found]


def end_of(db, key_id: int):
    with db.session() as s:
        return s.get(ApiKey, key_id).expires_at


def heard(db, secret: str) -> tuple[int, str]:
    with db.session() as s:
        decision = decide(load_key_state(s, hash_secret(secret)), None, None)
    return decision.status, decision.reason


def leased(db, minutes: int, env: str = "development", role: Role = Role.DEVELOPER):
    ws = f.workspace(db, environment=env)
    owner = f.member(db, ws, role)
    key_id, secret = f.key(db, ws, owner, "temp", lease_minutes=minutes)
    return ws, owner, key_id, secret


def test_a_lease_is_refused_outside_an_hour_to_ten_years_in_plain_words(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    with pytest.raises(InvalidInput, match="from 1 hour to 3650 days; 59 minutes is out of range"):
        db.run(keys.request_key, dev, ws, name="bot", lease_minutes=59)
    with pytest.raises(InvalidInput, match="3651 days is out of range"):
        db.run(keys.request_key, dev, ws, name="bot", lease_minutes=3651 * 1440)
    assert leases.describe_length(90) == "1 hour 30 minutes" and leases.describe_length(2880) == "2 days"


def test_each_warning_and_the_end_are_told_once_however_often_the_clock_runs(db, clock):
    _, _, key_id, secret = leased(db, 3 * 1440)
    end = end_of(db, key_id)
    for at, told in [
        (end - timedelta(days=1, minutes=1), []),
        (end - timedelta(days=1), [(key_id, "day")]),
        (end - timedelta(hours=5), [(key_id, "day")]),
        (end - timedelta(minutes=59), [(key_id, "day"), (key_id, "hour")]),
    ]:
        clock.move_to(at)
        db.run(leases.announce_leases, at)
        db.run(leases.announce_leases, at)  # the job every minute: nothing twice
        assert notices(db) == told, at
    assert heard(db, secret) == (200, "ok")
    clock.move_to(end)
    assert heard(db, secret)[1] == "expired"  # refused from its end, whether or not the clock has run
    db.run(leases.announce_leases, end)
    db.run(leases.announce_leases, end + timedelta(minutes=1))
    assert notices(db)[-1] == (key_id, "expired") and len(notices(db)) == 3
    with db.session() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "key.expire"))
        assert event.resource == f"key:{key_id}" and event.actor == "system:clock"
        assert s.get(KeyLease, key_id).expired_at is not None


def test_a_short_lease_gets_only_the_warnings_it_ran_long_enough_for(db, clock):
    _, _, key_id, _ = leased(db, 8 * 60)
    end = end_of(db, key_id)
    db.run(leases.announce_leases, utcnow())
    assert notices(db) == []  # 8 h: no day's warning, at its start or ever
    db.run(leases.announce_leases, end - timedelta(minutes=30))
    assert notices(db) == [(key_id, "hour")]


def test_a_clock_that_was_down_sends_only_the_nearer_warning(db):
    _, _, key_id, _ = leased(db, 3 * 1440)
    end = end_of(db, key_id)
    db.run(leases.announce_leases, end - timedelta(minutes=20))
    db.run(leases.announce_leases, end - timedelta(minutes=10))
    assert notices(db) == [(key_id, "hour")]


@pytest.mark.calendar
def test_a_lease_ends_to_the_minute_across_month_ends_new_year_and_leap_day(db, clock, instant):
    start = utcnow()
    _, _, key_id, secret = leased(db, 90)
    end = end_of(db, key_id)
    assert end - start == timedelta(minutes=90)
    clock.shift(timedelta(minutes=31))
    db.run(leases.announce_leases)
    assert notices(db) == [(key_id, "hour")]
    clock.move_to(end - timedelta(seconds=1))
    assert heard(db, secret) == (200, "ok")
    clock.move_to(end)
    db.run(leases.announce_leases)
    assert heard(db, secret)[1] == "expired" and notices(db)[-1] == (key_id, "expired")


def extension(db, key_id: int):
    with db.session() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.action == "key.extend", AuditEvent.resource == f"key:{key_id}")).all()


def test_an_extension_waits_for_an_admin_then_moves_the_end_by_the_leases_length_and_rearms_the_warnings(db, clock):
    ws, dev, key_id, secret = leased(db, 8 * 60, env="production")
    admin = f.member(db, ws, Role.ADMIN)
    end = end_of(db, key_id)
    db.run(leases.announce_leases, end - timedelta(minutes=30))
    req = db.run(leases.request_extension, dev, key_id)
    assert req.state is RequestState.PENDING and req.payload["by_minutes"] == 480
    with pytest.raises(Conflict, match=f"request #{req.id}"):
        db.run(leases.request_extension, dev, key_id)
    assert end_of(db, key_id) == end and extension(db, key_id) == []
    db.run(decide_request, admin, req.id, approve=True)
    assert end_of(db, key_id) == end + timedelta(hours=8)
    [event] = extension(db, key_id)
    assert event.details["to"] == (end + timedelta(hours=8)).isoformat()
    db.run(leases.announce_leases, end + timedelta(hours=7, minutes=30))  # the new end's hour warning, told again
    assert notices(db) == [(key_id, "hour"), (key_id, "hour")]
    clock.move_to(end + timedelta(minutes=1))
    assert heard(db, secret) == (200, "ok")


def test_an_extension_is_decided_by_the_workspaces_key_rules_on_the_keys_limit(db):
    ws, dev, key_id, _ = leased(db, 8 * 60, env="production")
    admin = f.member(db, ws, Role.ADMIN)
    db.run(approvals.set_policy, admin, ws, "key over $1: 2 admins")
    req = db.run(leases.request_extension, dev, key_id)
    assert req.payload["limit_micros"] > parse_money("$1") and req.approval_needs == {"admin": 2}


def test_an_admins_own_extension_is_approved_at_once(db):
    _, admin, key_id, _ = leased(db, 2 * 60, env="production", role=Role.ADMIN)
    end = end_of(db, key_id)
    req = db.run(leases.request_extension, admin, key_id)
    assert req.auto_approved and end_of(db, key_id) == end + timedelta(hours=2)
    with db.session() as s:
        told = s.scalars(select(Action.kind).where(Action.request_id == req.id)).all()
    assert ActionKind.REQUEST_DECIDED.value in told  # the owner hears the new end


def test_an_ended_lease_is_not_extended_and_only_the_owner_may_ask(db, clock):
    ws, dev, key_id, _ = leased(db, 60, env="production")
    admin = f.member(db, ws, Role.ADMIN)
    other = f.member(db, ws, Role.DEVELOPER)
    with pytest.raises(NotFound, match="Only a key's owner"):
        db.run(leases.request_extension, other, key_id)
    req = db.run(leases.request_extension, dev, key_id)
    clock.move_to(end_of(db, key_id) + timedelta(seconds=1))
    with pytest.raises(Conflict, match="ended at .* before this request was decided; deny it to close it"):
        db.run(decide_request, admin, req.id, approve=True)
    with pytest.raises(Conflict, match="an ended lease is not extended. Ask for a new key"):
        db.run(leases.request_extension, dev, key_id)
    with pytest.raises(Conflict, match="ask for a new key instead"):
        db.run(keys.rotate_key, dev, key_id)  # its successor would be born ended
