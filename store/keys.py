"""API keys: asking for one, provisioning it, the one-time reveal, rotate / revoke / disable / enable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import LIST_KEYS, LIST_PROJECTS, Conflict, InvalidInput, NotFound, NotYours
from store.models import Action, ApiKey, KeyReveal, Member, Project, Request, Workspace
from store.permissions import Actor, Permission, authorize, denial, load_workspace, membership
from store.leases import check_lease, lease_end, rotated_expiry
from store.requests import cancel_extensions, open_request
from store.secrets import cipher, display_prefix, hash_secret
from store.standing import may_hold_keys
from store.types import ActionKind, ActionStatus, KeyStatus, MemberStatus, Period, RequestKind, RequestState, Role, utcnow
from store.workspaces import role_template

KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$")
#: the encrypted secret waits this long for its owner, then is wiped
REVEAL_TTL = timedelta(hours=24)
MAX_LIFETIME_DAYS = 3650


def check_key_name(name: str) -> str:
    name = (name or "").strip()
    if not KEY_NAME.match(name):
        raise InvalidInput(f"“{name[:40]}” cannot name a key: use 1–60 letters, digits, dots, dashes or underscores, like `search-bot`.")
    return name


def request_key(
    s: Session,
    actor: Actor,
    workspace_id: int,
    *,
    name: str,
    project: str | None = None,
    limit_micros: int | None = None,
    expires_days: int | None = None,
    lease_minutes: int | None = None,
    reason: str | None = None,
) -> Request:
    """Ask for a key that lives ``lease_minutes`` (or ``expires_days``; neither: the role's preset lifetime) once made.
    Admins, and `auto` workspaces within the role's preset, are approved at once."""
    name = check_key_name(name)
    if expires_days is not None and not 1 <= expires_days <= MAX_LIFETIME_DAYS:
        raise InvalidInput(f"A key lives between 1 and {MAX_LIFETIME_DAYS} days; {expires_days} is out of range.")
    lease_minutes = check_lease(lease_minutes) if lease_minutes is not None else expires_days * 1440 if expires_days else None
    ws = load_workspace(s, workspace_id)
    me = authorize(s, actor, ws, Permission.CREATE_OWN_KEY, resource=f"key:{name}", attempted="key.request")
    if me is None:
        raise InvalidInput("Keys belong to members: ask for one as a member of the workspace.")
    proj = _project(s, ws, project) if project else None
    if s.scalars(select(ApiKey.id).where(ApiKey.member_id == me.id, ApiKey.name == name, ApiKey.status != KeyStatus.REVOKED)).first():
        raise Conflict(f"You already have a key called `{name}`. Pick another name, or rotate that one.")
    provisioning = select(Action.request_id).where(Action.kind == "provision_key", Action.status == ActionStatus.PENDING)
    asked = select(Request.id).where(
        Request.requester_id == me.id,
        Request.kind == RequestKind.KEY,
        Request.payload["name"].as_string() == name,
        or_(Request.state == RequestState.PENDING, Request.id.in_(provisioning)),
    )
    if s.scalars(asked).first():
        raise Conflict(f"You already asked for a key called `{name}`; it is waiting for an admin or on its way. Pick another name.")
    template = role_template(s, ws.id, me.role)
    preset = template.key_limit_micros if template else None
    period = template.limit_period if template else Period.MONTHLY
    lifetime = template.key_lifetime_days if template else None
    limit = preset if limit_micros is None else limit_micros
    minutes = lifetime * 1440 if lease_minutes is None and lifetime else lease_minutes
    payload = {
        "name": name,
        "owner_id": me.id,
        "project_id": proj.id if proj else None,
        "project": proj.slug if proj else None,
        "limit_micros": limit,
        "limit_period": period.value,
        "lease_minutes": minutes,
        "preset_micros": preset,
    }
    within_preset = (preset is None or (limit is not None and limit <= preset)) and (lifetime is None or (minutes is not None and minutes <= lifetime * 1440))
    req = open_request(s, ws, me, RequestKind.KEY, payload, reason=reason, within_preset=within_preset)
    if req.state is RequestState.APPROVED:  # the approval policy approved it at once (an Admin's own key, by default)
        # Applied here, not through store.decisions: that module imports this one.
        apply_key_request(s, Actor.operator("policy"), ws, req)
    return req


def _project(s: Session, ws: Workspace, slug: str) -> Project:
    proj = s.scalars(select(Project).where(Project.workspace_id == ws.id, Project.slug == slug.strip().lower())).one_or_none()
    if proj is None:
        raise NotFound(f"`{ws.slug}` has no project called `{slug[:40].replace('`', '')}`.", see=LIST_PROJECTS)
    return proj


def apply_key_request(s: Session, actor: Actor, ws: Workspace, req: Request) -> None:
    outbox.emit(s, ActionKind.PROVISION_KEY, workspace_id=ws.id, request_id=req.id, payload={"request_id": req.id})


@dataclass(frozen=True)
class Provisioned:
    key: ApiKey
    created: bool  # False when this action had already stored its key (a retry)


def owner_may_not_hold_keys(s: Session, req: Request) -> str | None:
    """Why the owner of an approved key request may no longer get the key, or None."""
    return refusal_for(s.get(Member, req.payload["owner_id"]))


def refusal_for(owner: Member | None) -> str | None:
    """``owner_may_not_hold_keys`` for an owner already loaded (or None: not found)."""
    if owner is None or owner.status is not MemberStatus.ACTIVE:
        return "No key was made: its owner is no longer a member of the workspace."
    if not may_hold_keys(owner.role):
        return f"No key was made: {owner.label} is now a {owner.role.title}, a role without API keys."
    return None


def provision_key(s: Session, action_id: str, *, secret: str, provider: str, provider_ref: str | None) -> Provisioned:
    """Store the key a provider just made for an approved request: hash, reference, encrypted reveal.

    Idempotent per action: a retried action finds the key it stored before.
    """
    action = s.get(Action, action_id)
    if action is None or action.request_id is None:
        raise NotFound(f"There is no key action {action_id}.")
    existing = s.scalars(select(ApiKey).where(ApiKey.request_id == action.request_id)).one_or_none()
    if existing is not None:
        return Provisioned(existing, False)
    req = s.get(Request, action.request_id)
    p = req.payload
    owner = s.get(Member, p["owner_id"])
    now = utcnow()
    key = ApiKey(
        workspace_id=req.workspace_id,
        member_id=owner.id,
        project_id=p.get("project_id"),
        request_id=req.id,
        name=p["name"],
        limit_micros=p.get("limit_micros"),
        limit_period=Period(p.get("limit_period") or "monthly"),
        expires_at=lease_end(p, now),
    )
    return Provisioned(store_new_key(s, key, secret, provider, provider_ref, actor="system:worker", details={"request": req.id}), True)


def store_new_key(s: Session, key: ApiKey, secret: str, provider: str, provider_ref: str | None, *, actor: str, details: dict, owner: str | None = None) -> ApiKey:
    """``owner``: the owner's label, when the caller has it (else the key's member is loaded for it)."""
    key.prefix = display_prefix(secret)
    key.secret_hash = hash_secret(secret)
    key.provider = provider
    key.provider_ref = provider_ref
    s.add(key)
    s.flush()
    s.add(KeyReveal(key_id=key.id, ciphertext=cipher().encrypt(secret), expires_at=utcnow() + REVEAL_TTL))
    audit.record(
        s,
        workspace_id=key.workspace_id,
        actor=actor,
        action="key.create",
        resource=f"key:{key.id}",
        details={"name": key.name, "owner": owner or (key.member.label if key.member else key.member_id), "prefix": key.prefix, "limit_micros": key.limit_micros, **details},
    )
    return key


def find_key(s: Session, actor: Actor, workspace_id: int, ref: str) -> ApiKey:
    """A key by id, name or displayed prefix: one's own first; an admin may name anyone's."""
    ws = load_workspace(s, workspace_id)
    me = membership(s, actor, ws.id)
    ref = (ref or "").strip()
    if not ref:
        raise InvalidInput("Name the key: its name, its prefix or its number.", see=LIST_KEYS)
    clauses = [ApiKey.name == ref, ApiKey.prefix == ref]
    number = ref.lstrip("#")
    if number.isascii() and number.isdigit() and 0 < int(number) < 2**63:  # beyond a BIGINT no key has that number
        clauses.append(ApiKey.id == int(number))
    stmt = select(ApiKey).where(ApiKey.workspace_id == ws.id, or_(*clauses), ApiKey.status != KeyStatus.REVOKED)
    found = list(s.scalars(stmt))
    if me is not None:
        own = [k for k in found if k.member_id == me.id]
        if own:
            found = own
        elif me.role is not Role.ADMIN:
            found = []
    if not found:
        raise NotFound(f"No live key matches “{ref[:40]}”.", see=LIST_KEYS)
    if len(found) > 1:
        raise InvalidInput(f"“{ref[:40]}” matches {len(found)} keys; use its number instead.", see=LIST_KEYS)
    return found[0]


def _authorize_key(s: Session, actor: Actor, key_id: int, attempted: str) -> tuple[Workspace, ApiKey]:
    key = s.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"There is no key #{key_id}.")
    ws = load_workspace(s, key.workspace_id)
    me = membership(s, actor, ws.id)
    permission = Permission.MANAGE_OWN_KEY if me is not None and me.id == key.member_id else Permission.MANAGE_ANY_KEY
    authorize(s, actor, ws, permission, resource=f"key:{key.id}", attempted=attempted)
    key = s.scalars(select(ApiKey).where(ApiKey.id == key_id).with_for_update().execution_options(populate_existing=True)).one()
    return ws, key


def list_keys(s: Session, actor: Actor, workspace_id: int, *, everyone: bool = False, include_revoked: bool = False) -> list[ApiKey]:
    ws = load_workspace(s, workspace_id)
    stmt = select(ApiKey).where(ApiKey.workspace_id == ws.id).order_by(ApiKey.id)
    if everyone:
        authorize(s, actor, ws, Permission.MANAGE_ANY_KEY, resource=f"workspace:{ws.slug}", attempted="key.list_all")
    else:
        me = authorize(s, actor, ws, Permission.VIEW_OWN_USAGE, resource=f"workspace:{ws.slug}", attempted="key.list")
        if me is not None:
            stmt = stmt.where(ApiKey.member_id == me.id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.status != KeyStatus.REVOKED)
    return list(s.scalars(stmt))


def revoke_key(s: Session, actor: Actor, key_id: int, reason: str | None = None) -> ApiKey:
    ws, key = _authorize_key(s, actor, key_id, "key.revoke")
    if key.status is KeyStatus.REVOKED:
        raise Conflict(f"Key `{key.name}` was already revoked at {key.revoked_at:%Y-%m-%d %H:%M} UTC.")
    revoke_key_rows(s, actor, ws, [key], reason=reason or "revoked")
    return key


def revoke_key_rows(s: Session, actor: Actor, ws: Workspace, keys: list[ApiKey], *, reason: str, event: str = "key.revoke", details: dict | None = None) -> None:
    """Revoke at once in the store (authz refuses from the commit on) and at the provider through the outbox.

    ``event`` and ``details``: the one audit event each revocation writes (a leak writes
    ``key.leaked`` naming where, rather than a ``key.revoke`` besides).
    """
    now = utcnow()
    for key in keys:
        if key.status is KeyStatus.REVOKED:
            continue
        key.status, key.status_reason, key.revoked_at = KeyStatus.REVOKED, reason, now
        _wipe(s, key.id)
        audit.record(s, workspace_id=ws.id, actor=actor.label, action=event, resource=f"key:{key.id}", details={"name": key.name, "owner": key.member.label, "reason": reason, **(details or {})})
        outbox.emit(s, ActionKind.REVOKE_KEY, workspace_id=ws.id, payload={"key_id": key.id})
    cancel_extensions(s, ws.id, [key.id for key in keys], actor=actor.label, why="the key was revoked")


def disable_key(s: Session, actor: Actor, key_id: int, reason: str | None = None) -> ApiKey:
    ws, key = _authorize_key(s, actor, key_id, "key.disable")
    if key.status is not KeyStatus.ACTIVE:
        raise Conflict(f"Key `{key.name}` is {key.status.value}, not active.")
    key.status, key.status_reason = KeyStatus.DISABLED, reason or "disabled"
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="key.disable", resource=f"key:{key.id}", details={"name": key.name, "reason": key.status_reason})
    outbox.emit(s, ActionKind.DISABLE_KEY, workspace_id=ws.id, payload={"key_id": key.id})
    return key


def enable_key(s: Session, actor: Actor, key_id: int) -> ApiKey:
    ws, key = _authorize_key(s, actor, key_id, "key.enable")
    if key.status is not KeyStatus.DISABLED:
        raise Conflict(f"Key `{key.name}` is {key.status.value}; only a disabled key can be enabled.")
    key.status, key.status_reason = KeyStatus.ACTIVE, None
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="key.enable", resource=f"key:{key.id}", details={"name": key.name})
    outbox.emit(s, ActionKind.ENABLE_KEY, workspace_id=ws.id, payload={"key_id": key.id})
    return key


def rotate_key(s: Session, actor: Actor, key_id: int) -> Action:
    """Ask for a successor. The worker makes it first; the old key is retired after the grace period."""
    ws, key = _authorize_key(s, actor, key_id, "key.rotate")
    if key.status is KeyStatus.REVOKED:
        raise Conflict(f"Key `{key.name}` is revoked; ask for a new key instead.")
    if key.expires_at is not None and key.expires_at <= utcnow():  # its successor would be born ended
        raise Conflict(f"The lease of `{key.name}` ended at {key.expires_at:%Y-%m-%d %H:%M} UTC; ask for a new key instead.")
    successor = s.scalars(select(ApiKey.id).where(ApiKey.rotated_from_id == key.id)).first()
    pending = s.scalars(
        select(Action.id).where(Action.kind == "rotate_key", Action.status == ActionStatus.PENDING, Action.payload["key_id"].as_integer() == key.id)
    ).first()
    if successor or pending:
        raise Conflict(f"Key `{key.name}` is already being rotated; its successor is on its way to the owner.")
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="key.rotate", resource=f"key:{key.id}", details={"name": key.name, "grace_hours": ws.rotation_grace_hours})
    return outbox.emit(s, ActionKind.ROTATE_KEY, workspace_id=ws.id, payload={"key_id": key.id, "grace_hours": ws.rotation_grace_hours})


def complete_rotation(s: Session, action_id: str, *, secret: str, provider: str, provider_ref: str | None) -> Provisioned:
    """Store the successor key and schedule the old one's retirement. Idempotent per action."""
    action = s.get(Action, action_id)
    old = s.get(ApiKey, action.payload["key_id"])
    existing = s.scalars(select(ApiKey).where(ApiKey.rotated_from_id == old.id)).one_or_none()
    if existing is not None:
        return Provisioned(existing, False)
    new = ApiKey(
        workspace_id=old.workspace_id,
        member_id=old.member_id,
        project_id=old.project_id,
        rotated_from_id=old.id,
        name=old.name,
        limit_micros=old.limit_micros,
        limit_period=old.limit_period,
        expires_at=rotated_expiry(action.payload, old.expires_at),
    )
    key = store_new_key(s, new, secret, provider, provider_ref, actor="system:worker", details={"rotated_from": old.id})
    retire = datetime.fromisoformat(action.payload["retire_at"]) if action.payload.get("retire_at") else utcnow() + timedelta(hours=int(action.payload.get("grace_hours", 24)))  # retire_at: an extension's (store.leases)
    outbox.emit(s, ActionKind.RETIRE_KEY, workspace_id=old.workspace_id, payload={"key_id": old.id, "successor_id": key.id}, run_after=retire)
    return Provisioned(key, True)


def retire_key(s: Session, key_id: int) -> ApiKey | None:
    """End of a rotation's grace period: the old key is revoked (the worker deletes it at the provider)."""
    key = s.scalars(select(ApiKey).where(ApiKey.id == key_id).with_for_update()).one_or_none()
    if key is None or key.status is KeyStatus.REVOKED:
        return None
    key.status, key.status_reason, key.revoked_at = KeyStatus.REVOKED, "rotated", utcnow()
    _wipe(s, key.id)
    audit.record(s, workspace_id=key.workspace_id, actor="system:worker", action="key.retire", resource=f"key:{key.id}", details={"name": key.name})
    return key


@dataclass(frozen=True)
class Revealed:
    key: ApiKey
    secret: str


def reveal_key(s: Session, actor: Actor, key_id: int) -> Revealed:
    """Hand the owner their secret, once. The ciphertext is wiped in the same transaction."""
    key = s.get(ApiKey, key_id)
    if key is None:
        raise NotFound("There is no key of yours to reveal here.")
    me = membership(s, actor, key.workspace_id)
    if me is None or me.id != key.member_id:
        raise NotYours("There is no key of yours to reveal here.", denial=denial(key.workspace_id, actor, "key.reveal", f"key:{key.id}", reason="not the owner"))
    if not may_hold_keys(me.role):
        raise Conflict(f"You are now a {me.role.title}, a role without API keys, so the secret of `{key.name}` stays hidden. An Admin can change your role back.", state="role")
    if key.status is KeyStatus.REVOKED:
        # revoking wipes the secret too; say so rather than blame the 24 hours
        raise Conflict(f"Key `{key.name}` was revoked and its secret destroyed. Ask for a new key.", state="revoked")
    reveal = s.scalars(select(KeyReveal).where(KeyReveal.key_id == key.id).with_for_update()).one_or_none()
    if reveal is None or reveal.ciphertext is None:
        if reveal is not None and reveal.revealed_at is not None:
            raise Conflict(
                f"The secret of `{key.name}` was already revealed at {reveal.revealed_at:%H:%M} UTC on {reveal.revealed_at:%Y-%m-%d}; "
                "Purser does not keep it. Rotate the key if you lost it.",
                state="revealed",
                decided_at=reveal.revealed_at,
            )
        raise Conflict(f"The secret of `{key.name}` was not revealed within 24 hours and has been wiped. Rotate the key to get a new one.", state="wiped")
    if reveal.expires_at <= utcnow():  # the clock's wipe job destroys it; a refusal changes nothing
        raise Conflict(f"The secret of `{key.name}` was not revealed within 24 hours and has been wiped. Rotate the key to get a new one.", state="wiped")
    secret = cipher().decrypt(reveal.ciphertext)
    reveal.ciphertext, reveal.revealed_at, reveal.wiped_at = None, utcnow(), utcnow()
    audit.record(s, workspace_id=key.workspace_id, actor=actor.label, action="key.reveal", resource=f"key:{key.id}", details={"name": key.name})
    return Revealed(key, secret)


def restore_reveal(s: Session, actor: Actor, key_id: int, secret: str, why: str) -> None:
    """Put back a secret whose one showing never reached its owner (Slack could not open the modal).

    Shown zero times is not shown once: the secret waits for its reveal again, under its
    original 24 hours, and the audit log says why the reveal was undone.
    """
    reveal = s.scalars(select(KeyReveal).where(KeyReveal.key_id == key_id).with_for_update()).one_or_none()
    key = s.get(ApiKey, key_id)
    me = membership(s, actor, key.workspace_id) if key else None
    if reveal is None or key is None or me is None or me.id != key.member_id or key.status is KeyStatus.REVOKED or reveal.ciphertext is not None:
        return
    reveal.ciphertext, reveal.revealed_at, reveal.wiped_at = cipher().encrypt(secret), None, None
    audit.record(s, workspace_id=key.workspace_id, actor=actor.label, action="key.reveal_undone", resource=f"key:{key.id}", details={"name": key.name, "why": why[:200]})


def _wipe(s: Session, key_id: int) -> None:
    reveal = s.get(KeyReveal, key_id)
    if reveal is not None and reveal.ciphertext is not None:
        reveal.ciphertext, reveal.wiped_at = None, utcnow()


def wipe_expired_reveals(s: Session, now: datetime | None = None) -> int:
    """Secrets nobody revealed within 24 hours are destroyed (the clock calls this)."""
    now = now or utcnow()
    stale = list(s.scalars(select(KeyReveal).where(KeyReveal.ciphertext.is_not(None), KeyReveal.expires_at <= now)))
    for reveal in stale:
        reveal.ciphertext, reveal.wiped_at = None, now
    return len(stale)


def reencrypt_reveals(s: Session) -> int:
    """After a PURSER_SECRET_KEY rotation: re-encrypt waiting secrets under the newest key."""
    # Locked, so a reveal committing meanwhile is not undone by writing its secret back.
    waiting = list(s.scalars(select(KeyReveal).where(KeyReveal.ciphertext.is_not(None)).with_for_update()))
    for reveal in waiting:
        reveal.ciphertext = cipher().rotate(reveal.ciphertext)
    return len(waiting)
