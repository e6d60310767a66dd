"""The audit log: append-only, hash-chained per workspace.

Each event's hash is sha256(previous hash + the event's canonical JSON), so an edited,
deleted or reordered row breaks every hash after it and ``verify_chain`` names the
first one that does not match.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TextIO

from sqlalchemy import String, bindparam, select, text, type_coerce
from sqlalchemy.orm import Session

from store.models import AuditEvent, AuditHead
from store.permissions import Actor, Permission, authorize, load_workspace
from store.types import utcnow

GENESIS = "0" * 64


def canonical(event: AuditEvent) -> str:
    body = {
        "workspace_id": event.workspace_id,
        "seq": event.seq,
        "at": event.at.isoformat(timespec="microseconds"),
        "actor": event.actor,
        "action": event.action,
        "resource": event.resource,
        "outcome": event.outcome,
        "details": event.details,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def chain_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


def start_chain(s: Session, workspace_id: int) -> None:
    s.add(AuditHead(workspace_id=workspace_id, seq=0, hash=GENESIS))
    s.flush()


def record(
    s: Session,
    *,
    workspace_id: int,
    actor: str,
    action: str,
    resource: str = "",
    details: dict[str, Any] | None = None,
    outcome: str = "ok",
) -> None:
    """Append one event in the caller's transaction (so it commits with the change it describes)."""
    event = AuditEvent(
        workspace_id=workspace_id,
        at=utcnow(),
        actor=actor[:80],
        action=action,
        resource=resource[:120],
        outcome=outcome,
        details=_jsonable(details or {}),
    )
    if s.get_bind().dialect.name == "postgresql":
        _append_in_one_statement(s, event)
        return
    # The head row is the chain's lock: appends to one workspace's chain are serial.
    head = s.scalars(select(AuditHead).where(AuditHead.workspace_id == workspace_id).with_for_update()).one()
    event.seq, event.prev_hash = head.seq + 1, head.hash
    event.hash = chain_hash(head.hash, event)
    head.seq, head.hash = event.seq, event.hash
    s.add(event)
    s.flush()


#: the marker canonical() is split at, where the event's seq goes (it sorts after every key but workspace_id)
_SEQ = "\x00seq\x00"

#: Lock the head, move it on and insert the event, in one round trip instead of three. The hash
#: is the same sha256(previous hash + canonical JSON) chain_hash computes: the JSON is made here,
#: split where the seq goes, and PostgreSQL puts in the seq it reads under the head's lock.
_APPEND = text(
    """
    WITH old AS (SELECT seq, hash FROM audit_heads WHERE workspace_id = :workspace_id FOR UPDATE),
    head AS (
        UPDATE audit_heads SET seq = old.seq + 1,
            hash = encode(sha256(convert_to(old.hash || :before || (old.seq + 1)::text || :after, 'UTF8')), 'hex')
        FROM old WHERE audit_heads.workspace_id = :workspace_id
        RETURNING audit_heads.seq, audit_heads.hash, old.hash AS prev_hash
    )
    INSERT INTO audit_events (workspace_id, seq, at, actor, action, resource, outcome, details, prev_hash, hash)
    SELECT :workspace_id, head.seq, :at, :actor, :action, :resource, :outcome, :details, head.prev_hash, head.hash FROM head
    """
).bindparams(bindparam("at", type_=AuditEvent.__table__.c.at.type), bindparam("details", type_=AuditEvent.__table__.c.details.type))


def _append_in_one_statement(s: Session, event: AuditEvent) -> None:
    s.flush()  # what the event refers to goes first, as an ORM append would have flushed it
    event.seq = _SEQ
    before, _, after = canonical(event).rpartition(json.dumps(_SEQ))
    appended = s.execute(
        _APPEND,
        {
            "workspace_id": event.workspace_id,
            "before": before,
            "after": after,
            "at": event.at,
            "actor": event.actor,
            "action": event.action,
            "resource": event.resource,
            "outcome": event.outcome,
            "details": event.details,
        },
    )
    if appended.rowcount != 1:
        raise RuntimeError(f"workspace {event.workspace_id} has no audit chain head")


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    # Round-trip now so the hash covers exactly what the JSON column will hand back.
    return json.loads(json.dumps(details, default=str))


def actor_label(actor: Actor, member=None) -> str:
    if member is not None and member.slack_user_id:
        return f"slack:{member.slack_user_id}"
    return actor.label


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    first_bad_id: int | None = None
    problem: str | None = None

    @property
    def summary(self) -> str:
        if self.ok:
            return f"The audit chain verifies: {self.checked} event(s), none altered."
        if self.first_bad_seq is None:
            return f"The audit chain is broken: {self.problem}."
        row = f" (row {self.first_bad_id})" if self.first_bad_id is not None else ""
        return f"The audit chain is broken at event #{self.first_bad_seq}{row}: {self.problem}."


@dataclass(frozen=True)
class StoredEvent:
    """An audit row as stored, read without trusting it: ``unreadable`` says what could not be read."""

    id: int
    workspace_id: int
    seq: int
    at: datetime | None
    actor: str
    action: str
    resource: str
    outcome: str
    details: Any
    prev_hash: str
    hash: str
    unreadable: str | None = None


#: the columns as the database holds them: a row whose time or details were overwritten with
#: junk must be named by verify, not stop it
_RAW = (
    AuditEvent.id,
    AuditEvent.workspace_id,
    AuditEvent.seq,
    type_coerce(AuditEvent.at, String),
    AuditEvent.actor,
    AuditEvent.action,
    AuditEvent.resource,
    AuditEvent.outcome,
    type_coerce(AuditEvent.details, String),
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def _stored(row) -> StoredEvent:
    id_, workspace_id, seq, at, actor, action, resource, outcome, details, prev_hash, hash_ = row
    problem = None
    try:
        if isinstance(at, str):  # SQLite hands back the text; PostgreSQL a checked timestamp
            at = datetime.fromisoformat(at)
        at = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at
    except (TypeError, ValueError, AttributeError):
        at, problem = None, "its time cannot be read"
    try:
        if isinstance(details, (str, bytes)):
            details = json.loads(details)
    except ValueError:
        details, problem = None, problem or "its details cannot be read"
    return StoredEvent(id_, workspace_id, seq, at, actor, action, resource, outcome, details, prev_hash, hash_, problem)


def verify_chain(s: Session, workspace_id: int) -> Verification:
    """Walk one workspace's chain in order and name the first event that does not match.

    The head is read with the events in one statement, so one snapshot: an event appended
    while the chain is being read is not mistaken for a missing or a forged one. Rows are
    read as stored, so junk in one is named as the break, never an error.
    """
    rows = s.execute(
        select(AuditHead.seq, AuditHead.hash, *_RAW)
        .select_from(AuditHead)
        .outerjoin(AuditEvent, AuditEvent.workspace_id == AuditHead.workspace_id)
        .where(AuditHead.workspace_id == workspace_id)
        .order_by(AuditEvent.seq, AuditEvent.id)
    ).yield_per(1000)
    head, prev_hash, expected_seq, checked, last_id = None, GENESIS, 1, 0, None
    for head_seq, head_hash, *raw in rows:
        head = (head_seq, head_hash)
        if raw[0] is None:
            break
        event = _stored(raw)
        if event.unreadable:
            return Verification(False, checked, event.seq, event.id, f"{event.unreadable}, so it was changed after it was written")
        if event.seq > head_seq:
            return Verification(False, checked, event.seq, event.id, f"it lies beyond the chain's head (#{head_seq}), so Purser did not append it")
        if event.seq != expected_seq:
            # seq is unique per workspace, so a mismatch is a gap: the missing seq is the first bad one
            return Verification(False, checked, expected_seq, None, f"it is missing; the next event found is #{event.seq}")
        if event.prev_hash != prev_hash:
            return Verification(False, checked, event.seq, event.id, "it does not follow the event before it")
        if chain_hash(prev_hash, event) != event.hash:
            return Verification(False, checked, event.seq, event.id, "its contents were changed after it was written")
        prev_hash, expected_seq, checked, last_id = event.hash, expected_seq + 1, checked + 1, event.id
    if head is None:
        return Verification(False, 0, None, None, "its head record is missing, so its length and last hash cannot be checked")
    head_seq, head_hash = head
    if head_seq > checked:
        return Verification(False, checked, checked + 1, None, f"it is missing: the chain should hold {head_seq} event(s) but ends after {checked}")
    if head_hash != prev_hash:
        return Verification(False, checked, checked, last_id, "it does not match the chain's head, so it or events before it were rewritten")
    return Verification(True, checked)


def verify(s: Session, actor: Actor, workspace_id: int) -> Verification:
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.VIEW_AUDIT, resource=f"workspace:{ws.slug}", attempted="audit.verify")
    return verify_chain(s, workspace_id)


def recent(s: Session, actor: Actor, workspace_id: int, limit: int = 20) -> list[AuditEvent]:
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.VIEW_AUDIT, resource=f"workspace:{ws.slug}", attempted="audit.recent")
    limit = max(1, min(int(limit), 200))
    return list(
        s.scalars(select(AuditEvent).where(AuditEvent.workspace_id == workspace_id).order_by(AuditEvent.seq.desc()).limit(limit))
    )


def events_between(s: Session, workspace_id: int, since: datetime, until: datetime) -> list[StoredEvent]:
    """The window's events as stored; an unreadable one is left for ``verify_chain`` to name."""
    rows = s.execute(select(*_RAW).where(AuditEvent.workspace_id == workspace_id, AuditEvent.at >= since, AuditEvent.at < until).order_by(AuditEvent.seq))
    return [event for event in map(_stored, rows) if not event.unreadable]


EXPORT_FIELDS = ("seq", "at", "actor", "action", "resource", "outcome", "details", "prev_hash", "hash")


def export(s: Session, actor: Actor, workspace_id: int, out: TextIO, fmt: str = "jsonl") -> int:
    """Write the whole chain as CSV or JSON lines, oldest first, hashes included so it can be re-verified."""
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.VIEW_AUDIT, resource=f"workspace:{ws.slug}", attempted="audit.export")
    lines = 0
    for chunk in _export_rows(s, workspace_id, fmt):
        out.write(chunk)
        lines += 1
    return lines


def _export_rows(s: Session, workspace_id: int, fmt: str) -> Iterator[str]:
    from store.errors import InvalidInput

    if fmt not in ("csv", "jsonl"):
        raise InvalidInput(f"“{fmt[:20]}” is not an export format. Use csv or jsonl.")
    rows = s.scalars(select(AuditEvent).where(AuditEvent.workspace_id == workspace_id).order_by(AuditEvent.seq)).yield_per(1000)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(EXPORT_FIELDS)
        yield buf.getvalue()
        for event in rows:
            buf.seek(0)
            buf.truncate()
            writer.writerow([_field(event, f) for f in EXPORT_FIELDS])
            yield buf.getvalue()
        return
    for event in rows:
        yield json.dumps({f: _field(event, f, raw=True) for f in EXPORT_FIELDS}, ensure_ascii=False) + "\n"


def _field(event: AuditEvent, name: str, raw: bool = False):
    value = getattr(event, name)
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if name == "details" and not raw:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return value
