"""The identity provider's groups (SCIM Groups): pushed with their members, they give roles through the Admins' mappings.

A change of a group's members or name settles everyone it concerns (``store.scim_people.settle``):
the people leaving first, so a swap of Admins does not trip the cap of five on the way. The
whole push is one transaction: if one person cannot get the role (the cap), nothing of it
is applied and the identity provider is told why (and retries at its next cycle).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store import audit
from store.errors import Conflict, InvalidInput, NotFound
from store.models_scim import ScimGroup, ScimGroupMember, ScimUser
from store.permissions import load_workspace
from store.scim import Grant, key_of
from store.scim_people import settle
from store.types import utcnow

MOST_MEMBERS = 10_000


@dataclass(frozen=True)
class GroupIn:
    display_name: str
    external_id: str | None = None
    members: list[tuple[str, str | None]] = field(default_factory=list)  # (user id, display as sent)


def list_groups(s: Session, grant: Grant, display_name: str | None = None) -> list[ScimGroup]:
    query = select(ScimGroup).where(ScimGroup.workspace_id == grant.workspace_id)
    if display_name is not None:
        query = query.where(ScimGroup.name_key == key_of(display_name))
    return list(s.scalars(query.order_by(ScimGroup.created_at, ScimGroup.id)))


def get_group(s: Session, grant: Grant, group_id: str) -> ScimGroup:
    group = s.get(ScimGroup, group_id)
    if group is None or group.workspace_id != grant.workspace_id:
        raise NotFound(f"There is no Group {group_id[:40]!r} here.")
    return group


def members_of(s: Session, group_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """For each group, its members as (user id, display: as the provider named them, else the userName), in one query for a page."""
    found: dict[str, list[tuple[str, str]]] = {g: [] for g in group_ids}
    if group_ids:
        rows = s.execute(
            select(ScimGroupMember.group_id, ScimUser.id, ScimGroupMember.display, ScimUser.user_name)
            .join(ScimUser, ScimUser.id == ScimGroupMember.user_id)
            .where(ScimGroupMember.group_id.in_(group_ids))
            .order_by(ScimUser.user_name)
        )
        for group_id, user_id, display, user_name in rows:
            found[group_id].append((user_id, display or user_name))
    return found


def create_group(s: Session, grant: Grant, data: GroupIn) -> ScimGroup:
    ws = load_workspace(s, grant.workspace_id, lock=True)
    _check_unique_name(s, ws.id, data.display_name, None)
    wanted = _users(s, grant, data.members)
    group = ScimGroup(id=uuid.uuid4().hex, workspace_id=ws.id, display_name=data.display_name, name_key=key_of(data.display_name), external_id=data.external_id)
    s.add(group)
    s.flush()
    s.add_all(ScimGroupMember(group_id=group.id, user_id=u.id, display=_display(data, u.id)) for u in wanted)
    s.flush()
    audit.record(s, workspace_id=ws.id, actor=grant.actor.label, action="scim.group.create", resource=f"scim_group:{group.display_name[:100]}", details={"members": len(wanted)})
    for user in wanted:
        settle(s, grant.actor, ws, user)
    return group


def replace_group(s: Session, grant: Grant, group_id: str, data: GroupIn, expected_version: int | None = None) -> ScimGroup:
    """PUT, and PATCH once the service has applied it: ``data`` is the whole new state of the group."""
    ws = load_workspace(s, grant.workspace_id, lock=True)
    group = _locked_group(s, grant, group_id, expected_version)
    _check_unique_name(s, ws.id, data.display_name, group.id)
    wanted = {u.id: u for u in _users(s, grant, data.members)}
    rows = {m.user_id: m for m in s.scalars(select(ScimGroupMember).where(ScimGroupMember.group_id == group.id))}
    had = set(rows)
    renamed = key_of(data.display_name) != group.name_key
    details = {"added": len(wanted.keys() - had), "removed": len(had - wanted.keys())}
    if renamed:
        details["renamed_from"] = group.display_name[:100]
    s.execute(delete(ScimGroupMember).where(ScimGroupMember.group_id == group.id, ScimGroupMember.user_id.in_(sorted(had - wanted.keys()))))
    s.add_all(ScimGroupMember(group_id=group.id, user_id=u, display=_display(data, u)) for u in sorted(wanted.keys() - had))
    for user_id in had & wanted.keys():
        rows[user_id].display = _display(data, user_id)
    group.display_name, group.name_key, group.external_id = data.display_name, key_of(data.display_name), data.external_id
    group.version, group.updated_at = group.version + 1, utcnow()
    s.flush()
    audit.record(s, workspace_id=ws.id, actor=grant.actor.label, action="scim.group.update", resource=f"scim_group:{group.display_name[:100]}", details=details)
    # a rename may move the whole group to another mapping: then everyone in it is concerned
    concerned = (had | wanted.keys()) if renamed else (had ^ wanted.keys())
    _settle_leavers_first(s, grant, ws, concerned, leaving=had - wanted.keys())
    return group


def delete_group(s: Session, grant: Grant, group_id: str, expected_version: int | None = None) -> None:
    ws = load_workspace(s, grant.workspace_id, lock=True)
    group = _locked_group(s, grant, group_id, expected_version)
    had = set(s.scalars(select(ScimGroupMember.user_id).where(ScimGroupMember.group_id == group.id)))
    s.execute(delete(ScimGroupMember).where(ScimGroupMember.group_id == group.id))
    audit.record(s, workspace_id=ws.id, actor=grant.actor.label, action="scim.group.delete", resource=f"scim_group:{group.display_name[:100]}", details={"members": len(had)})
    s.delete(group)
    s.flush()
    _settle_leavers_first(s, grant, ws, had, leaving=had)


def _settle_leavers_first(s: Session, grant: Grant, ws, concerned: set[str], *, leaving: set[str]) -> None:
    for user_id in sorted(concerned, key=lambda u: (u not in leaving, u)):
        user = s.get(ScimUser, user_id)
        if user is not None:
            settle(s, grant.actor, ws, user)


def _display(data: GroupIn, user_id: str) -> str | None:
    shown = next((d for u, d in data.members if u == user_id and d), None)
    return shown[:200] if shown else None


def _users(s: Session, grant: Grant, members: list[tuple[str, str | None]]) -> list[ScimUser]:
    ids = list(dict.fromkeys(u for u, _ in members))
    if len(ids) > MOST_MEMBERS:
        raise InvalidInput(f"A group here holds at most {MOST_MEMBERS} members; this one names {len(ids)}.")
    found = {u.id: u for u in s.scalars(select(ScimUser).where(ScimUser.workspace_id == grant.workspace_id, ScimUser.id.in_(ids)))} if ids else {}
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidInput(f"Group members must be Users provisioned here; there is no User {missing[0][:40]!r}. Provision the User first.")
    return [found[i] for i in ids]


def _check_unique_name(s: Session, workspace_id: int, display_name: str, group_id: str | None) -> None:
    taken = s.scalars(select(ScimGroup.id).where(ScimGroup.workspace_id == workspace_id, ScimGroup.name_key == key_of(display_name))).first()
    if taken is not None and taken != group_id:
        raise Conflict(f"A Group called {display_name[:100]!r} already exists here (id {taken}). Update that one instead.", state="uniqueness")


def _locked_group(s: Session, grant: Grant, group_id: str, expected_version: int | None) -> ScimGroup:
    group = s.scalars(select(ScimGroup).where(ScimGroup.id == group_id).with_for_update()).one_or_none()
    if group is None or group.workspace_id != grant.workspace_id:
        raise NotFound(f"There is no Group {group_id[:40]!r} here.")
    if expected_version is not None and group.version != expected_version:
        raise Conflict(f"The Group changed since version {expected_version} (it is at {group.version}). Read it again, then retry.", state="version")
    return group
