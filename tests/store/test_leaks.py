"""The leak guard's store side: what counts as a key, revocation once per leak, the replacement."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from store import keys, leaks
from store.errors import Conflict, InvalidInput
from store.leak_scan import hash_secret, scan
from store.models import Action, ApiKey, AuditEvent, Request
from store.permissions import Actor
from store.secrets import mint_local_secret
from store.types import KeyStatus, Role
from tests import factories as f

SLACK = leaks.Source(team_id="T0TEAM", channel="C0GENERAL", ts="1700000000.000100", poster="U0POSTER")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200), st.text(max_size=200))
def test_every_key_of_pursers_format_is_found_wherever_it_sits_in_a_message(before, after):
    secret = mint_local_secret()
    found = scan(f"{before} {secret} {after}")
    assert hash_secret(secret) in found.secret_hashes


def test_openrouter_keys_are_found_and_near_misses_are_not():
    real = "sk-or-v1-" + "0123456789abcdef" * 4
    assert scan(f"`{real}`").secret_hashes == (hash_secret(real),)
    assert scan("sk-or-v1-" + "0123456789abcdef" * 3).secret_hashes == ()  # too short
    assert scan("sk-purser-" + "a" * 42).secret_hashes == ()
    assert scan("prefix" + mint_local_secret()).secret_hashes == ()  # part of a longer token: not a key we handed out


@pytest.mark.parametrize(
    "text, vendor",
    [
        ("AKIAIOSFODNN7EXAMPLE", "AWS Access Key"),
        ("ghp_" + "a1B2" * 9, "GitHub Token"),
        ("xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx", "Slack Token"),
        ("sk-ant-api03-" + "x" * 90, "Anthropic API Key"),
        ("sk-proj-" + "A" * 20 + "T3BlbkFJ" + "B" * 20, "OpenAI Token"),
    ],
)
def test_other_vendors_credentials_are_named_by_vendor_not_by_value(text, vendor):
    found = scan(f"config: {text}")
    assert found.vendors == (vendor,) and found.secret_hashes == ()
    assert text not in repr(found)


def test_ordinary_text_finds_nothing():
    assert not scan("the sk- prefix is explained in the docs; see AKIA in the AWS guide")


def key_of(db, env="development"):
    ws = f.workspace(db, "leaky", env)
    dev = f.member(db, ws, Role.DEVELOPER)
    key, secret = f.key(db, ws, dev, "search-bot")
    return ws, dev, key, secret


def test_a_leak_revokes_once_audits_once_and_tells_people_once(sqlite_db):
    db = sqlite_db
    ws, dev, key, secret = key_of(db)
    secret_hash = hash_secret(secret)
    first = db.run(leaks.report_leak, [secret_hash, secret_hash, "0" * 64], SLACK)
    assert (first.revoked, first.again, first.unknown) == ([key], [], 1)
    again = db.run(leaks.report_leak, [secret_hash], leaks.Source(url="https://ci.example/job/7", reporter="api"))
    assert (again.revoked, again.again) == ([], [key])
    with db.session() as s:
        k = s.get(ApiKey, key)
        assert k.status is KeyStatus.REVOKED and k.status_reason.startswith("leaked in <#C0GENERAL>")
        events = [(e.action, e.details.get("channel")) for e in s.scalars(select(AuditEvent).where(AuditEvent.resource == f"key:{key}"))]
        kinds = sorted(a.kind for a in s.scalars(select(Action).where(Action.workspace_id == ws)))
    assert ("key.leaked", "C0GENERAL") in events and not any(a == "key.revoke" for a, _ in events)
    assert kinds.count("leak_notice") == 1 and kinds.count("revoke_key") == 1


def test_only_the_owner_may_ask_for_a_replacement_and_only_once(sqlite_db):
    db = sqlite_db
    ws, dev, key, secret = key_of(db)
    admin = f.member(db, ws, Role.ADMIN)
    with pytest.raises(InvalidInput, match="not revoked for a leak"):
        db.run(leaks.request_replacement, Actor.slack(dev.slack_user_id), key)
    db.run(leaks.report_leak, [hash_secret(secret)], SLACK)
    with pytest.raises(InvalidInput, match="Only the key's owner"):
        db.run(leaks.request_replacement, Actor.slack(admin.slack_user_id), key)
    req = db.run(leaks.request_replacement, Actor.slack(dev.slack_user_id), key)
    assert req.payload["name"] == "search-bot" and req.payload["replaces"] == key
    with pytest.raises(Conflict, match="asked for already"):
        db.run(leaks.request_replacement, Actor.slack(dev.slack_user_id), key)
    with db.session() as s:
        assert s.scalar(select(Request.id).where(Request.id == req.id)) == req.id


def test_a_key_revoked_for_another_reason_is_counted_not_announced(sqlite_db):
    db = sqlite_db
    ws, dev, key, secret = key_of(db)
    db.run(keys.revoke_key, f.OPERATOR, key)
    out = db.run(leaks.report_leak, [hash_secret(secret)], SLACK)
    assert out.again == [key] and out.revoked == []
    with db.session() as s:
        assert not s.scalars(select(Action).where(Action.kind == "leak_notice")).first()


def test_a_key_adopted_from_openrouter_is_found_by_its_openrouter_hash(sqlite_db):
    db = sqlite_db
    ws, dev, key, _ = key_of(db)
    secret = "sk-or-v1-" + "5e" * 32

    def adopted(s):  # as store.adoption keeps it: no secret hash Purser could know, OpenRouter's hash as the reference
        k = s.get(ApiKey, key)
        k.provider, k.provider_ref, k.secret_hash = "openrouter", hash_secret(secret), "openrouter:" + "0" * 53

    db.run(adopted)
    out = db.run(leaks.report_leak, scan(f"leaked {secret}").secret_hashes, SLACK)
    assert out.revoked == [key]


def test_another_vendors_credential_is_announced_once_in_an_audit_channel_two_workspaces_share(sqlite_db):
    from store import workspaces

    db = sqlite_db
    a = f.workspace(db, "one", "development", team_id="T0TEAM")
    b = f.workspace(db, "two", "development", team_id="T0TEAM")
    c = f.workspace(db, "three", "development", team_id="T0TEAM")
    for ws, channel in ((a, "C0AUDIT"), (b, "C0AUDIT"), (c, "C0OTHER")):
        db.run(workspaces.set_channels, f.OPERATOR, ws, audit_channel=channel)
    assert db.run(leaks.report_foreign, ["AWS Access Key"], SLACK) == 2
    with db.session() as s:
        notices = [a.payload["warn_poster"] for a in s.scalars(select(Action).where(Action.kind == "foreign_secret_notice").order_by(Action.created_at))]
    assert sorted(notices) == [False, True]  # the poster is warned once
