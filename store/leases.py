"""A key's lease on time: how long it may be, the warnings before its end, its end, and extending it.

(Not the quota lease of store/quota.py, which is money.)

- **The lease is the key's ``expires_at``**; whether the key may be used follows from it in
  ``store.standing`` (``lease_standing``), like every other fact. Nothing here flips a flag
  that authz reads: at its end the key is refused whether or not the clock has run.
- **Lengths** run from ``MIN_LEASE`` (an hour: the last warning comes an hour ahead) to
  ``MAX_LEASE`` (ten years, the longest lifetime a key could always be given).
- **Warnings**, a day and an hour before the end, are each sent once per end (``key_leases``
  remembers them), and only when the lease ran that far: an 8 h lease gets the hour's
  warning alone. When the clock finds both due (it was down), only the nearer is sent.
- **The end** is announced once: ``key.expire`` audited with the notice row in one
  transaction, the owner told, and the provider brought in line (a key there is disabled once
  its standing says expired; OpenRouter also ends it itself through its own ``expires_at``).
- **Extending** is a ``key_extend`` request by the key's owner, adding the lease's first
  length to its end, and decided as a key request is (store.decisions): an Admin's own, or
  one whose whole lease stays within the role's preset lifetime in an ``auto`` workspace, is
  approved at once; any other waits for an Admin. A lease that has ended is not extended (by
  the time of asking, or of approving): a key past its end asks for a new key, so that a
  lapsed key is never brought back without anyone looking at it anew.
- **At OpenRouter** a key's ``expires_at`` is set when it is made and cannot be moved (its
  ``PATCH /keys/{hash}`` takes no ``expires_at``): an approved extension of such a key makes
  a successor with the new end (a rotation), whose Reveal button comes by DM; the old key
  keeps working until its own end and is then retired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from store import audit, outbox
from store.errors import Conflict, InvalidInput, NotFound, NotYours
from store.models import ApiKey, Member, Request, Workspace
from store.models_leases import KeyLease
from store.permissions import Actor, Permission, authorize, denial, load_workspace
from store.requests import open_request
from store.types import (
    ActionKind,
    KeyPolicy,
    KeyStatus,
    RequestKind,
    RequestState,
    Role,
    utcnow,
)
from store.workspaces import role_template

MIN_LEASE = timedelta(hours=1)
MAX_LEASE = timedelta(days=3650)
#: the warnings before a lease ends, nearest first: (its name in the notice, how far ahead)
WARNINGS = (("hour", timedelta(hours=1)), ("day", timedelta(days=1)))
#: providers whose keys' end Purser alone enforces, so it can be moved in place
MOVABLE = frozenset({"local"})


def check_lease(minutes: int) -> int:
    if not MIN_LEASE <= timedelta(minutes=minutes) <= MAX_LEASE:
        raise InvalidInput(f"A key's lease runs from 1 hour to {MAX_LEASE.days} days; {describe_length(minutes)} is out of range.")
    return minutes


def describe_length(minutes: int) -> str:
    """90 → "1 hour 30 minutes", 2880 → "2 days": how a lease's length is said to people."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (mins, "minute")]
    said = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    return " ".join(said) or "0 minutes"


def lease_end(payload: dict, start: datetime) -> datetime | None:
    """When a key asked for with ``payload`` ends, if made at ``start``; requests made before
    leases were counted in minutes carry ``expires_days``."""
    if payload.get("lease_minutes"):
        return start + timedelta(minutes=payload["lease_minutes"])
    if payload.get("expires_days"):
        return start + timedelta(days=payload["expires_days"])
    return None


def rotated_expiry(payload: dict, old_end: datetime | None) -> datetime | None:
    """A successor's end: the old key's, or the new end an extension gave it."""
    return datetime.fromisoformat(payload["expires_at"]) if payload.get("expires_at") else old_end


def _length(key: ApiKey, lease: KeyLease | None) -> int:
    if lease is not None:
        return lease.length_minutes
    return max(1, round((key.expires_at - key.created_at).total_seconds() / 60))


def _row(s: Session, key: ApiKey, lease: KeyLease | None) -> KeyLease:
    """The key's notice row, made on first sight with the lease as it was set when the key was made."""
    if lease is None:
        lease = KeyLease(key_id=key.id, workspace_id=key.workspace_id, ends_at=key.expires_at, set_at=key.created_at, length_minutes=_length(key, None))
        s.add(lease)
    return lease


# -- the clock: warnings and ends -----------------------------------------------------------------


def announce_leases(s: Session, now: datetime | None = None) -> int:
    """Send the warnings and ends that are due, each once (the clock calls this every minute); returns how many."""
    now = now or utcnow()
    successor = aliased(ApiKey)
    rows = s.execute(
        select(ApiKey, KeyLease)
        .outerjoin(KeyLease, KeyLease.key_id == ApiKey.id)
        .where(
            ApiKey.status == KeyStatus.ACTIVE,
            ApiKey.expires_at.is_not(None),
            ApiKey.expires_at <= now + WARNINGS[-1][1],
            or_(KeyLease.key_id.is_(None), KeyLease.expired_at.is_(None), KeyLease.ends_at != ApiKey.expires_at),
            # a key being rotated away is retired by its rotation; its owner hears of its successor
            ~select(successor.id).where(successor.rotated_from_id == ApiKey.id).exists(),
        )
        .order_by(ApiKey.id)
        .with_for_update(of=ApiKey, skip_locked=True)
    ).all()
    sent = 0
    for key, lease in rows:
        lease = _row(s, key, lease)
        if lease.ends_at != key.expires_at:  # moved by something other than an extension: warn afresh from now
            lease.ends_at, lease.set_at, lease.warned_day_at, lease.warned_hour_at, lease.expired_at = key.expires_at, now, None, None, None
        kind = _due(lease, now)
        if kind is None:
            continue
        if kind == "expired":
            lease.expired_at = now
            audit.record(s, workspace_id=key.workspace_id, actor="system:clock", action="key.expire", resource=f"key:{key.id}", details={"name": key.name, "ended_at": key.expires_at.isoformat()})
        outbox.emit(s, ActionKind.LEASE_NOTICE, workspace_id=key.workspace_id, payload={"key_id": key.id, "kind": kind, "ends_at": key.expires_at.isoformat()})
        sent += 1
    return sent


def _due(lease: KeyLease, now: datetime) -> str | None:
    """Which notice is due now, marking it (and any further warning it stands in for) sent."""
    end = lease.ends_at
    if end <= now:
        return "expired"
    for name, ahead in WARNINGS:
        if now < end - ahead:
            continue  # not yet: look at the next one further ahead
        already = lease.warned_hour_at if name == "hour" else lease.warned_day_at
        if already is not None or lease.set_at >= end - ahead:
            return None  # said, or the lease was set nearer its end than this warning
        lease.warned_hour_at = lease.warned_hour_at or (now if name == "hour" else None)
        lease.warned_day_at = lease.warned_day_at or now  # the day's warning is past too once the hour's is due
        return name
    return None


# -- extending -----------------------------------------------------------------------------------


def request_extension(s: Session, actor: Actor, key_id: int, reason: str | None = None) -> Request:
    """The owner asks for the key's end to move on by its lease's length; the key policy decides."""
    key = s.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"There is no key #{key_id}.")
    ws = load_workspace(s, key.workspace_id)
    me = authorize(s, actor, ws, Permission.MANAGE_OWN_KEY, resource=f"key:{key.id}", attempted="key.extend")
    if me is None or me.id != key.member_id:
        raise NotYours("Only a key's owner can ask to extend it.", denial=denial(ws.id, actor, "key.extend", f"key:{key.id}", reason="not the owner"))
    key = s.scalars(select(ApiKey).where(ApiKey.id == key_id).with_for_update().execution_options(populate_existing=True)).one()
    _check_extendable(key, utcnow())
    asked = select(Request.id).where(Request.kind == RequestKind.KEY_EXTEND, Request.state == RequestState.PENDING, Request.payload["key_id"].as_integer() == key.id)
    waiting = s.scalars(asked).first()
    if waiting is not None:
        raise Conflict(f"You already asked to extend `{key.name}` (request #{waiting}); it is waiting for an Admin.")
    lease = s.get(KeyLease, key.id)
    by = _length(key, lease)
    # The key's limit and project ride along: an extension is the same key for longer, so the
    # approval policy's key rules decide it (store.approval_rules.facts_of), "2 Admins over $500" included.
    payload = {
        "key_id": key.id, "name": key.name, "owner_id": me.id, "by_minutes": by, "from": key.expires_at.isoformat(),
        "limit_micros": key.limit_micros, "project": key.project.slug if key.project else None,
    }  # fmt: skip
    template = role_template(s, ws.id, me.role)
    lifetime = template.key_lifetime_days if template else None
    preset = template.key_limit_micros if template else None
    within_preset = (preset is None or (key.limit_micros is not None and key.limit_micros <= preset)) and (
        lifetime is None or key.expires_at + timedelta(minutes=by) - key.created_at <= timedelta(days=lifetime)
    )
    req = open_request(s, ws, me, RequestKind.KEY_EXTEND, payload, reason=reason, within_preset=within_preset)
    if req.state is RequestState.APPROVED:  # the policy approved it at once (an Admin's own key, by default)
        apply_extend_request(s, Actor.operator("policy"), ws, req)
        # Nobody clicked: the outcome DM is how the owner hears of the new end.
        outbox.emit(s, ActionKind.REQUEST_DECIDED, workspace_id=ws.id, request_id=req.id, payload={"request_id": req.id})
    return req


def _check_extendable(key: ApiKey, now: datetime, *, waited: bool = False) -> None:
    """``waited``: checked again on approval, when the key may have changed since it was asked for."""
    then = " before this request was decided; deny it to close it." if waited else ""
    if key.status is KeyStatus.REVOKED:
        raise Conflict(f"Key `{key.name}` was revoked" + (then or "; ask for a new key."), state="revoked")
    if key.expires_at is None:
        raise InvalidInput(f"Key `{key.name}` has no end to extend.")
    if key.expires_at <= now:
        ended = f"The lease of `{key.name}` ended at {key.expires_at:%Y-%m-%d %H:%M} UTC"
        raise Conflict(ended + (then or ", and an ended lease is not extended. Ask for a new key."), state="expired")


def apply_extend_request(s: Session, actor: Actor, ws: Workspace, req: Request) -> None:
    """An approved extension: the key's end moves on (or, where the provider cannot move it, a successor is made with it)."""
    key = s.scalars(select(ApiKey).where(ApiKey.id == req.payload["key_id"]).with_for_update().execution_options(populate_existing=True)).one_or_none()
    if key is None:
        raise NotFound(f"There is no key #{req.payload['key_id']}.")
    now = utcnow()
    _check_extendable(key, now, waited=True)  # it may have ended or gone while it waited
    by = timedelta(minutes=req.payload["by_minutes"])
    end = key.expires_at + by
    req.payload = {**req.payload, "to": end.isoformat()}
    details = {"name": key.name, "from": key.expires_at.isoformat(), "to": end.isoformat(), "request": req.id}
    if key.provider in MOVABLE:
        key.expires_at = end
        lease = _row(s, key, s.get(KeyLease, key.id))
        lease.ends_at, lease.set_at, lease.warned_day_at, lease.warned_hour_at, lease.expired_at = end, now, None, None, None
    else:
        details["by"] = "successor"
        req.payload = {**req.payload, "successor": True}
        # The successor carries the new end; the old key works on until its own, and is retired then.
        outbox.emit(s, ActionKind.ROTATE_KEY, workspace_id=ws.id, payload={"key_id": key.id, "expires_at": end.isoformat(), "retire_at": key.expires_at.isoformat()})
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="key.extend", resource=f"key:{key.id}", details=details)


# -- what a notice shows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseNotice:
    key_id: int
    name: str
    workspace: str
    owner: str | None  # Slack user id
    kind: str  # day | hour | expired
    ends_at: datetime
    by_minutes: int  # what Extend would add
    still_due: bool  # False: the end moved since (extended) or the key went; the notice is not sent


def lease_notice(s: Session, key_id: int, kind: str, ends_at: datetime) -> LeaseNotice:
    key = s.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"There is no key #{key_id}.")
    owner = s.get(Member, key.member_id)
    ws = s.get(Workspace, key.workspace_id)
    still = key.status is KeyStatus.ACTIVE and key.expires_at == ends_at
    return LeaseNotice(key.id, key.name, ws.slug, owner.slack_user_id, kind, ends_at, _length(key, s.get(KeyLease, key.id)), still)
