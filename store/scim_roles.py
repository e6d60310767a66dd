"""Which of the identity provider's groups gives which role in a workspace (`/ai-workspace scim map`); docs/scim.md."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import audit
from store.errors import InvalidInput, NotFound
from store.models_scim import ScimGroup, ScimRoleMap
from store.permissions import Actor, Permission, authorize, load_workspace
from store.scim import EVERYONE, key_of
from store.scim_people import settle_group_members
from store.types import Role


def map_group(s: Session, actor: Actor, workspace_id: int, group: str, role: Role | str) -> ScimRoleMap:
    """Members of the identity provider's group ``group`` get ``role`` here; people already pushed get it at once."""
    role = Role.parse(role) if isinstance(role, str) else role
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.MANAGE_MEMBERS, resource=f"scim_group:{group[:60]}", attempted="scim.map")
    shown = group.strip()
    if not shown or len(shown) > 200:
        raise InvalidInput("Name the group as the identity provider shows it (up to 200 characters), or * for everyone provisioned.")
    row = s.get(ScimRoleMap, (ws.id, key_of(shown)))
    old = row.role.value if row else None
    if row is None:
        row = ScimRoleMap(workspace_id=ws.id, name_key=key_of(shown), display_name=shown, role=role, created_by=actor.label)
        s.add(row)
    row.role, row.display_name = role, shown
    s.flush()
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="scim.map", resource=f"scim_group:{shown[:100]}", details={"role": role.value, "was": old})
    settle_group_members(s, actor, ws, key_of(shown))
    return row


def unmap_group(s: Session, actor: Actor, workspace_id: int, group: str) -> str:
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.MANAGE_MEMBERS, resource=f"scim_group:{group[:60]}", attempted="scim.unmap")
    row = s.get(ScimRoleMap, (ws.id, key_of(group)))
    if row is None:
        raise NotFound(f"No group called “{group.strip()[:60]}” is mapped in `{ws.slug}`. See the mappings with `scim maps`.")
    shown = row.display_name
    s.delete(row)
    s.flush()
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="scim.unmap", resource=f"scim_group:{shown[:100]}", details={"role": row.role.value})
    settle_group_members(s, actor, ws, key_of(shown))
    return shown


def list_maps(s: Session, actor: Actor, workspace_id: int) -> list[tuple[str, str, bool]]:
    """(group, role title, whether the identity provider has pushed that group yet)."""
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.MANAGE_MEMBERS, resource=f"workspace:{ws.slug}", attempted="scim.maps")
    pushed = set(s.scalars(select(ScimGroup.name_key).where(ScimGroup.workspace_id == ws.id)))
    rows = s.scalars(select(ScimRoleMap).where(ScimRoleMap.workspace_id == ws.id).order_by(ScimRoleMap.name_key))
    return [(r.display_name, r.role.title, r.name_key in pushed or r.name_key == EVERYONE) for r in rows]
