"""The audit log: one event per change in the change's own transaction, denials alone, a verifiable chain."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import delete, func, select, update

from store import audit, budgets, credits, keys, members, workspaces
from store.errors import Conflict, InvalidInput, LimitReached, PermissionDenied
from store.models import AuditEvent, AuditHead, Workspace
from store.money import parse_money
from store.types import KeyPolicy, Role
from tests import factories as f

USD = parse_money


def events(db, ws: int) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.workspace_id == ws).order_by(AuditEvent.seq)))


def verify(db, ws: int) -> audit.Verification:
    with db.session() as s:
        return audit.verify_chain(s, ws)


@pytest.fixture
def team(db):
    ws = f.workspace(db, "team", "development")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    return ws, admin, dev


def test_each_state_change_writes_exactly_one_audit_event(db, team):
    ws, admin, dev = team
    f.project(db, ws, "search")
    dev_id = f.member_id(db, ws, dev)
    changes = [
        (lambda: db.run(workspaces.set_key_policy, admin, ws, "approval"), "workspace.policy"),
        (lambda: db.run(workspaces.set_thresholds, admin, ws, [50, 90]), "workspace.thresholds"),
        (lambda: db.run(workspaces.set_channels, admin, ws, audit_channel="C0AUDIT"), "workspace.channels"),
        (lambda: db.run(workspaces.set_digest, admin, ws, "weekly"), "workspace.digest"),
        (lambda: db.run(budgets.set_workspace_cap, admin, ws, USD("$100")), "cap.set"),
        (lambda: db.run(budgets.create_project, admin, ws, "chat"), "project.create"),
        (lambda: db.run(budgets.pause_project, admin, ws, "chat", "why not"), "project.pause"),
        (lambda: db.run(budgets.resume_project, admin, ws, "chat"), "project.resume"),
        (lambda: db.run(credits.add_credit, admin, ws, USD("$5")), "credit.add"),
        (lambda: db.run(members.add_member, admin, ws, role="viewer", slack_user_id="U0NEW"), "member.add"),
        (lambda: db.run(members.change_role, admin, ws, dev_id, "viewer"), "member.role"),
    ]
    for change, action in changes:
        before = len(events(db, ws))
        change()
        new = events(db, ws)[before:]
        assert [(e.action, e.outcome, e.actor) for e in new] == [(action, "ok", admin.label)], action
    assert verify(db, ws).ok


def test_a_change_and_its_event_commit_or_roll_back_together(db, team):
    ws, admin, _ = team
    before = len(events(db, ws))

    def change_then_fail(s):
        workspaces.set_key_policy(s, admin, ws, "approval")
        raise InvalidInput("something later in the same operation was wrong")

    with pytest.raises(InvalidInput):
        db.run(change_then_fail)
    assert len(events(db, ws)) == before
    with db.session() as s:
        assert s.get(Workspace, ws).key_policy is KeyPolicy.AUTO


def test_a_refused_action_writes_only_its_denial(db, team):
    ws, _, dev = team
    before = len(events(db, ws))
    with pytest.raises(PermissionDenied):
        db.run(budgets.set_workspace_cap, dev, ws, USD("$1"))
    [denial] = events(db, ws)[before:]
    assert (denial.action, denial.outcome, denial.actor, denial.resource, denial.details) == (
        "cap.set",
        "denied",
        dev.label,
        "workspace:team",
        {"reason": "role"},
    )
    with db.session() as s:
        assert s.get(Workspace, ws).cap_micros is None
    assert verify(db, ws).ok


def test_a_limit_refusal_is_audited_as_a_denial_with_its_numbers(db, team):
    ws, admin, _ = team
    db.run(budgets.set_workspace_cap, admin, ws, USD("$10"))
    before = len(events(db, ws))
    with pytest.raises(LimitReached):
        db.run(budgets.create_project, admin, ws, "big", budget_micros=USD("$11"))
    [denial] = events(db, ws)[before:]
    assert denial.outcome == "denied"
    assert denial.details == {"reason": "over cap", "cap": USD("$10"), "others": 0, "asked": USD("$11")}


def test_conflicts_and_bad_input_leave_no_trace(db, team):
    ws, admin, _ = team
    db.run(budgets.create_project, admin, ws, "dup")
    before = len(events(db, ws))
    with pytest.raises(Conflict):
        db.run(budgets.create_project, admin, ws, "dup")
    with pytest.raises(InvalidInput):
        db.run(workspaces.add_allowlist, admin, ws, "nonsense")
    assert events(db, ws)[before:] == []


def test_each_workspace_has_its_own_chain(db, team):
    ws, admin, _ = team
    other = f.workspace(db, "other")
    f.member(db, other, Role.ADMIN)
    db.run(workspaces.set_digest, admin, ws, "off")
    for w in (ws, other):
        chain = events(db, w)
        assert [e.seq for e in chain] == list(range(1, len(chain) + 1))
        assert chain[0].prev_hash == audit.GENESIS
        assert all(later.prev_hash == earlier.hash for earlier, later in zip(chain, chain[1:]))
        assert verify(db, w).ok and verify(db, w).checked == len(chain)


def test_an_edited_event_is_named_by_verify(db, team):
    ws, admin, _ = team
    db.run(workspaces.set_digest, admin, ws, "weekly")
    db.run(workspaces.set_digest, admin, ws, "off")
    target = events(db, ws)[-2]
    with db.session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(actor="slack:U0SOMEONEELSE"))
        s.commit()
    result = verify(db, ws)
    assert (result.ok, result.first_bad_seq, result.first_bad_id) == (False, target.seq, target.id)
    assert f"broken at event #{target.seq}" in result.summary and "changed after it was written" in result.summary


def test_a_deleted_event_is_found_by_verify(db, team):
    ws, admin, _ = team
    db.run(workspaces.set_digest, admin, ws, "weekly")
    db.run(workspaces.set_digest, admin, ws, "off")
    middle = events(db, ws)[1]
    with db.session() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id == middle.id))
        s.commit()
    result = verify(db, ws)
    assert (result.ok, result.first_bad_seq) == (False, middle.seq)


def test_a_truncated_chain_is_found_by_verify(db, team):
    ws, admin, _ = team
    db.run(workspaces.set_digest, admin, ws, "weekly")
    last = events(db, ws)[-1]
    with db.session() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id == last.id))
        s.commit()
    result = verify(db, ws)
    assert (result.ok, result.first_bad_seq) == (False, last.seq)
    assert "ends after" in result.summary


def test_export_carries_every_event_with_its_hashes(db, team):
    ws, admin, _ = team
    db.run(workspaces.set_digest, admin, ws, "weekly")
    chain = events(db, ws)
    with db.session() as s:
        out = io.StringIO()
        assert audit.export(s, admin, ws, out, "jsonl") == len(chain)
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        out = io.StringIO()
        audit.export(s, admin, ws, out, "csv")
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(l["seq"], l["action"], l["prev_hash"], l["hash"]) for l in lines] == [(e.seq, e.action, e.prev_hash, e.hash) for e in chain]
    assert lines[-1]["details"] == {"from": "daily", "to": "weekly"}
    assert [(int(r["seq"]), r["hash"]) for r in rows] == [(e.seq, e.hash) for e in chain]
    assert json.loads(rows[-1]["details"]) == {"from": "daily", "to": "weekly"}
    with db.session() as s:
        with pytest.raises(InvalidInput, match="csv or jsonl"):
            audit.export(s, admin, ws, io.StringIO(), "xml")


def test_only_admins_view_verify_and_export_the_log(db, team):
    ws, admin, dev = team
    billing = f.member(db, ws, Role.BILLING)
    for who in (dev, billing):
        with pytest.raises(PermissionDenied, match="view the audit log"):
            db.run(audit.verify, who, ws)
        with pytest.raises(PermissionDenied):
            db.run(audit.export, who, ws, io.StringIO(), "jsonl")
        with pytest.raises(PermissionDenied):
            db.run(audit.recent, who, ws)
    assert db.run(audit.verify, admin, ws).ok
    newest_first = [e.seq for e in reversed(events(db, ws))]
    assert [e.seq for e in db.run(audit.recent, admin, ws, 3)] == newest_first[:3]


def test_key_secrets_never_reach_the_audit_log(db, team):
    ws, _, dev = team
    key_id, secret = f.key(db, ws, dev, "bot")
    db.run(keys.reveal_key, dev, key_id)
    with db.session() as s:
        out = io.StringIO()
        audit.export(s, f.OPERATOR, ws, out, "jsonl")
    assert secret not in out.getvalue()
    assert "key.reveal" in out.getvalue()


def test_the_head_follows_the_last_event(db, team):
    ws, _, _ = team
    chain = events(db, ws)
    with db.session() as s:
        head = s.get(AuditHead, ws)
        assert (head.seq, head.hash) == (chain[-1].seq, chain[-1].hash)
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.workspace_id == ws)) == head.seq


@pytest.mark.parametrize("column, junk", [("details", "{"), ("at", "yesterday"), ("at", "2026-13-45 99:00:00")])
def test_junk_in_a_row_is_named_by_verify_and_the_digest_reports_it(sqlite_db, column, junk):
    """SQLite keeps whatever text is written over a row; verify and the digest must survive it."""
    from datetime import timedelta

    from sqlalchemy import text

    from store.digests import build_digest
    from store.types import utcnow

    db = sqlite_db
    ws = f.workspace(db, "team", "development")
    admin = f.member(db, ws, Role.ADMIN)
    db.run(workspaces.set_digest, admin, ws, "weekly")
    db.run(workspaces.set_digest, admin, ws, "off")
    target = events(db, ws)[-2]
    with db.engine.begin() as conn:
        conn.execute(text(f"UPDATE audit_events SET {column} = :junk WHERE id = :id"), {"junk": junk, "id": target.id})
    result = verify(db, ws)
    assert (result.ok, result.first_bad_seq, result.first_bad_id) == (False, target.seq, target.id)
    assert "cannot be read" in result.summary
    with db.session() as s:
        digest = build_digest(s, ws, utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))
    assert not digest.verification.ok and digest.verification.first_bad_seq == target.seq
