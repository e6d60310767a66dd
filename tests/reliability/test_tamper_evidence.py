"""Tamper evidence: the audit log changed behind Purser's back, with SQL, is found and named.

Someone with write access to the database edits, deletes, reorders, forges or truncates
audit rows. `purser audit verify` (the operator's command) names the first bad event and
exits non-zero, and the next audit digest tells the workspace's audit channel that the
chain is broken. An untouched chain next to it keeps verifying, also while it grows.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import timedelta
from typing import Callable

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from purser.cli import app as cli
from purser.settings import get_settings
from store import audit, budgets, workspaces
from store.audit import chain_hash
from store.errors import PermissionDenied
from store.models import AuditEvent
from store.types import Role, utcnow
from tests import factories as f
from workers import maintenance

# Details as people type them and Purser records them: a legitimate chain holding these must verify.
AWKWARD = [
    {"name": "naïve — “quoted” 🔑", "note": "line\nbreak\ttab \\ backslash \"quote\"", "nul": "a\u0000b"},
    {"big": 2**63 - 1, "negative": -(10**15), "float": 0.1, "half": 12.5, "none": None, "flags": [True, False]},
    {"nested": {"z": [1, {"y": "ü"}], "a": {}}, "empty": "", "long": "x" * 2000},
]


def audit_channel(slug: str) -> str:
    return "C0" + slug.upper().replace("-", "") + "AUDIT"


def history(db, slug: str) -> int:
    """A workspace with a few dozen ordinary events: settings, members, a denial, awkward details."""
    ws = f.workspace(db, slug, "production")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(workspaces.set_channels, f.OPERATOR, ws, audit_channel=audit_channel(slug))
    for frequency in ("weekly", "daily"):
        db.run(workspaces.set_digest, admin, ws, frequency)
    f.project(db, ws, "search")
    with pytest.raises(PermissionDenied):
        db.run(budgets.create_project, dev, ws, "sneaky")
    db.run(lambda s: [audit.record(s, workspace_id=ws, actor="system:test", action="test.awkward", details=d) for d in AWKWARD])
    db.run(workspaces.set_digest, admin, ws, "daily")
    return ws


def chain(conn, ws: int) -> list[AuditEvent]:
    return list(conn.execute(select(AuditEvent).where(AuditEvent.workspace_id == ws).order_by(AuditEvent.seq)))


# -- the tampering, as SQL against the live store ------------------------------------
# Each takes (connection, workspace id, number of events, where to strike) and returns the
# seq that must be named (None: no single event can be) and words the verdict must contain.

Tamper = Callable[..., tuple[int | None, str]]


def edit(conn, ws, n, k):
    conn.execute(text("UPDATE audit_events SET actor = 'slack:U0MALLORY' WHERE workspace_id = :ws AND seq = :k"), {"ws": ws, "k": k})
    return k, "changed after it was written"


def edit_and_rehash(conn, ws, n, k):
    """The edited row gets a matching hash; the next row still points at the old one."""
    row = chain(conn, ws)[k - 1]
    forged = AuditEvent(**{c: getattr(row, c) for c in ("workspace_id", "seq", "at", "actor", "action", "resource", "outcome", "prev_hash")}, details={"reason": "nothing happened"})
    conn.execute(text("UPDATE audit_events SET details = :d, hash = :h WHERE id = :id"), {"d": '{"reason": "nothing happened"}', "h": chain_hash(row.prev_hash, forged), "id": row.id})
    return k + 1, "does not follow the event before it"


def delete(conn, ws, n, k):
    conn.execute(text("DELETE FROM audit_events WHERE workspace_id = :ws AND seq = :k"), {"ws": ws, "k": k})
    return k, "missing"


def delete_and_renumber(conn, ws, n, k):
    """The gap closed by moving every later event down one."""
    conn.execute(text("DELETE FROM audit_events WHERE workspace_id = :ws AND seq = :k"), {"ws": ws, "k": k})
    for seq in range(k + 1, n + 1):  # one at a time: seq is unique
        conn.execute(text("UPDATE audit_events SET seq = seq - 1 WHERE workspace_id = :ws AND seq = :seq"), {"ws": ws, "seq": seq})
    return k, "does not follow the event before it"


def reorder(conn, ws, n, k):
    params = {"ws": ws, "k": k, "tmp": 10**9}
    conn.execute(text("UPDATE audit_events SET seq = :tmp WHERE workspace_id = :ws AND seq = :k"), params)
    conn.execute(text("UPDATE audit_events SET seq = :k WHERE workspace_id = :ws AND seq = :k + 1"), params)
    conn.execute(text("UPDATE audit_events SET seq = :k + 1 WHERE workspace_id = :ws AND seq = :tmp"), params)
    return k, "does not follow the event before it"


def swap_contents(conn, ws, n, k):
    """Two rows trade what they say but keep their places and hashes."""
    a, b = chain(conn, ws)[k - 1 : k + 1]
    for row, other in ((a, b), (b, a)):
        conn.execute(
            AuditEvent.__table__.update().where(AuditEvent.id == row.id),
            {"actor": other.actor, "action": other.action, "resource": other.resource, "details": other.details},
        )
    return k, "changed after it was written"


def truncate_tail(conn, ws, n, k):
    conn.execute(text("DELETE FROM audit_events WHERE workspace_id = :ws AND seq > :keep"), {"ws": ws, "keep": n - 2})
    return n - 1, f"should hold {n} event(s) but ends after {n - 2}"


def delete_everything(conn, ws, n, k):
    conn.execute(text("DELETE FROM audit_events WHERE workspace_id = :ws"), {"ws": ws})
    return 1, f"should hold {n} event(s) but ends after 0"


def forge_append(conn, ws, n, k):
    """A well-formed event added at the end, hash and all; only the head knows it is not Purser's."""
    last = chain(conn, ws)[-1]
    forged = AuditEvent(workspace_id=ws, seq=n + 1, at=utcnow(), actor="slack:U0MALLORY", action="credit.add", resource="workspace", outcome="ok", details={"amount_micros": 10**9}, prev_hash=last.hash)
    conn.execute(
        AuditEvent.__table__.insert(),
        {**{c: getattr(forged, c) for c in ("workspace_id", "seq", "at", "actor", "action", "resource", "outcome", "details", "prev_hash")}, "hash": chain_hash(last.hash, forged)},
    )
    return n + 1, "beyond the chain's head"


def rewrite_tail(conn, ws, n, k):
    """One event edited and every later hash recomputed: consistent, but not with the head."""
    prev = None
    for row in chain(conn, ws)[k - 1 :]:
        values = {c: getattr(row, c) for c in ("workspace_id", "seq", "at", "actor", "action", "resource", "outcome", "details")}
        if row.seq == k:
            values["actor"] = "slack:U0MALLORY"
        forged = AuditEvent(**values, prev_hash=prev or row.prev_hash)
        prev = chain_hash(forged.prev_hash, forged)
        conn.execute(text("UPDATE audit_events SET actor = :actor, prev_hash = :p, hash = :h WHERE id = :id"), {"actor": values["actor"], "p": forged.prev_hash, "h": prev, "id": row.id})
    return n, "does not match the chain's head"


def delete_head(conn, ws, n, k):
    conn.execute(text("DELETE FROM audit_heads WHERE workspace_id = :ws"), {"ws": ws})
    return None, "head record is missing"


TAMPERING: dict[str, Tamper] = {
    t.__name__: t
    for t in (edit, edit_and_rehash, delete, delete_and_renumber, reorder, swap_contents, truncate_tail, delete_everything, forge_append, rewrite_tail, delete_head)
}


def tamper(db, ws: int, how: Tamper) -> tuple[int | None, str]:
    with db.engine.begin() as conn:
        n = len(chain(conn, ws))
        return how(conn, ws, n, n // 2)


def expected_line(slug: str, seq: int | None, words: str) -> tuple[str, str]:
    where = f"{slug}: The audit chain is broken at event #{seq}" if seq is not None else f"{slug}: The audit chain is broken:"
    return where, words


# -- the operator's command and the digest -------------------------------------------


@pytest.fixture
def operator(db, monkeypatch):
    """`purser …` in this process, against the test's store, as the operator runs it."""
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(cli, list(args))
    get_settings.cache_clear()


def lines_by_workspace(output: str) -> dict[str, str]:
    return {line.split(":", 1)[0]: line for line in output.splitlines() if ":" in line}


def test_every_kind_of_tampering_is_named_by_verify_and_told_by_the_digest(db, operator, stub_workers, slack_api):
    intact = history(db, "intact")
    victims = {name: history(db, name.replace("_", "-")) for name in TAMPERING}
    assert operator("audit", "verify").exit_code == 0  # a clean start, awkward details and all
    expected = {name.replace("_", "-"): tamper(db, ws, TAMPERING[name]) for name, ws in victims.items()}

    everything = operator("audit", "verify")
    assert everything.exit_code == 1
    said = lines_by_workspace(everything.stdout)
    assert "intact: The audit chain verifies" in said["intact"]
    wrong = {}
    for slug, (seq, words) in expected.items():
        prefix, must = expected_line(slug, seq, words)
        if not (said.get(slug, "").startswith(prefix) and must in said[slug]):
            wrong[slug] = said.get(slug)
    assert wrong == {}, f"verify missed or misnamed: {wrong}"
    one = operator("audit", "verify", "edit")
    assert one.exit_code == 1 and one.stdout.startswith(expected_line("edit", *expected["edit"])[0])
    assert operator("audit", "verify", "intact").exit_code == 0

    tomorrow = (utcnow() + timedelta(days=1)).isoformat()
    for ws in [intact, *victims.values()]:
        maintenance.post_digest.send(ws, tomorrow)
    stub_workers.settle()
    [clean] = slack_api.channel_messages(audit_channel("intact"))
    assert "The audit chain verifies" in str(clean.blocks)
    for slug, (seq, words) in expected.items():
        [digest] = slack_api.channel_messages(audit_channel(slug))
        shown = str(digest.blocks)
        assert "The audit chain is broken" in shown and words in shown and "purser audit verify" in shown, slug
        if seq is not None:
            assert f"#{seq}" in shown, slug


def test_the_installed_command_exits_non_zero_naming_the_event(pg_db):
    ws = history(pg_db, "ledger")
    seq, _ = tamper(pg_db, ws, reorder)
    env = {**os.environ, "DATABASE_URL": pg_db.url}
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, "-m", "purser", "audit", "verify", "ledger"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith(f"ledger: The audit chain is broken at event #{seq}")


def test_a_chain_growing_while_it_is_verified_is_not_called_broken(pg_db):
    """PostgreSQL reads each statement at its own moment: an event committed between reading
    the events and reading the head must not look like a truncated or forged chain."""
    db = pg_db
    ws = history(db, "busy")
    admin = f.member(db, ws, Role.ADMIN)
    appended = []

    def append_meanwhile(conn, cursor, statement, parameters, context, executemany):
        if "audit_events" in statement and not appended and conn.info.get("verifying"):
            appended.append(db.run(workspaces.set_digest, admin, ws, "weekly" if len(appended) % 2 == 0 else "daily"))

    event.listen(db.engine, "after_cursor_execute", append_meanwhile)
    try:
        with db.session() as s:
            s.connection().info["verifying"] = True
            during = audit.verify_chain(s, ws)
            s.connection().info.pop("verifying")
    finally:
        event.remove(db.engine, "after_cursor_execute", append_meanwhile)
    assert appended, "an event was appended while the chain was read"
    assert during.ok, during.summary
    with db.session() as s:
        after = audit.verify_chain(s, ws)
    assert after.ok and after.checked == during.checked + 1


# -- the long version: a long chain, tampered at random places -----------------------


@pytest.mark.slow
def test_tampering_anywhere_in_a_long_chain_is_named(db):
    ws = history(db, "long")
    rng = random.Random(20261127)
    db.run(lambda s: [audit.record(s, workspace_id=ws, actor=f"slack:U{i:08d}", action="test.event", resource=f"key:{i}", details=rng.choice(AWKWARD) | {"i": i}) for i in range(3000)])
    with db.session() as s:
        n = audit.verify_chain(s, ws).checked
    missed, trials = [], 0
    for name, how in TAMPERING.items():
        for _ in range(8):
            k = rng.randint(1, n - 1)  # reorder and swap_contents also touch k + 1
            with db.engine.connect() as conn:
                transaction = conn.begin()
                seq, words = how(conn, ws, n, k)
                with Session(bind=conn) as s:
                    result = audit.verify_chain(s, ws)
                transaction.rollback()  # the next trial starts from the intact chain
            trials += 1
            if result.ok or result.first_bad_seq != seq or words not in result.summary:
                missed.append((name, k, seq, result.summary))
    print(f"\ntamper evidence [{db.dialect}]: {trials} trials at random places in a chain of {n} events, {len(missed)} missed")
    assert missed == []
    with db.session() as s:
        assert audit.verify_chain(s, ws).ok
