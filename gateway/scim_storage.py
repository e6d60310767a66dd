"""scim2-server's storage over Purser's store: SCIM Users and Groups to and from the store's SCIM operations.

scim2-server (``ScimHandler``) speaks the protocol: it validates bodies with scim2-models,
applies PUT and PATCH to the stored resource, evaluates filters' syntax, conditional headers
and paging parameters, and shapes every answer and error. This storage only reads and writes
a grant's resources through ``store.scim_people`` / ``store.scim_groups``, each call one
store transaction, and turns the store's refusals into SCIM errors.

A workspace holds hundreds of people, not millions: a search reads the workspace's resources
(a ``userName eq`` / ``displayName eq`` filter, what identity providers send, is narrowed in
SQL first) and filters, sorts and pages them with scim2-models' own filter evaluation.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar, Union

from scim2_models import (
    ConflictException,
    ForbiddenException,
    Group,
    InvalidValueException,
    Meta,
    NotFoundException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ScimFilter,
    ScimProvider,
    SearchRequest,
    UniquenessException,
    User,
)
from scim2_models.path import CompareOperator, Comparison
from scim2_server.storage import ScimStorage, SearchPage
from scim2_server.utils import parametrize
from sqlalchemy.orm import Session

from store import scim_groups, scim_people
from store.db import Database
from store.errors import Conflict, DomainError, LimitReached, NotFound, PermissionDenied
from store.models_scim import ScimGroup, ScimUser
from store.scim import Grant

T = TypeVar("T")
#: fields the store keeps in columns (or never keeps: a password), not in the user's document
_COLUMNS = {"id", "meta", "userName", "externalId", "active", "password", "groups"}
MAX_DOCUMENT = 64 * 1024


def _equality(scim_filter: ScimFilter[Any] | None) -> tuple[str | None, str | None]:
    """(attribute, value) of a filter that is one ``attr eq "string"`` — what identity providers search with — else (None, None)."""
    node = scim_filter.ast if scim_filter is not None else None
    if isinstance(node, Comparison) and node.op == CompareOperator.eq and isinstance(node.value, str) and node.attr_path.uri is None and node.attr_path.sub_attr is None:
        return node.attr_path.attr.lower(), node.value
    return None, None


def version_of(row: ScimUser | ScimGroup) -> str:
    return f'W/"{row.version}"'


def _expected(version: str | None) -> int | None:
    if version is None:
        return None
    digits = version.removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise PreconditionFailedException(detail=f"{version[:40]!r} is not a version of this resource")
    return int(digits)


class PurserStorage(ScimStorage):
    """The resources one token may see: its workspace's people and groups."""

    def __init__(self, db: Database, grant: Grant, provider: ScimProvider, on_refusal: Callable[[Grant, str], None]) -> None:
        self.db, self.grant, self.provider = db, grant, provider
        self.on_refusal = on_refusal

    # -- the store, with its refusals as SCIM errors -----------------------------------------

    def _run(self, op: Callable[..., T], *args: Any) -> T:
        try:
            return self.db.run(op, *args)
        except LimitReached as exc:  # a role cap, the last Admin: audited by the store; the Admins are told
            self.on_refusal(self.grant, exc.message)
            raise ConflictException(detail=f"{exc.message} (refused: nothing of this request was applied; the workspace's Admins were told)") from None
        except NotFound as exc:
            raise NotFoundException(detail=exc.message) from None
        except Conflict as exc:
            if exc.state == "version":
                raise PreconditionFailedException(detail=exc.message) from None
            if exc.state == "uniqueness":
                raise UniquenessException(detail=exc.message) from None
            raise ConflictException(detail=exc.message) from None
        except PermissionDenied as exc:
            raise ForbiddenException(detail=exc.message) from None
        except DomainError as exc:
            raise InvalidValueException(detail=exc.message) from None

    def _model(self, resource_type: ResourceType) -> type[Resource[Any]]:
        return self.provider.model_for(resource_type)

    def _is_user(self, resource_type: ResourceType) -> bool:
        return resource_type.name == "User"

    # -- ScimStorage --------------------------------------------------------------------------

    def get(self, resource_type: ResourceType, resource_id: str, **_projection: Any) -> Resource[Any]:
        # response_parameters (a projection) need not be honoured: the service applies them to what is returned
        if self._is_user(resource_type):
            return self._run(lambda s: self._user(s, scim_people.get_user(s, self.grant, resource_id)))
        return self._run(lambda s: self._groups(s, [scim_groups.get_group(s, self.grant, resource_id)])[0])

    def search(self, resource_types: list[ResourceType], search_request: SearchRequest[Any], **_cursor: Any) -> SearchPage:
        # paged by index only (no cursors announced): the position scim2-server passes is always None
        attr, value = _equality(search_request.filter) if len(resource_types) == 1 else (None, None)
        found: list[Resource[Any]] = []
        for resource_type in resource_types:
            if self._is_user(resource_type):
                only = value if attr == "username" else None
                found += self._run(lambda s: [self._user(s, u) for u in scim_people.list_users(s, self.grant, only)])
            else:
                only = value if attr == "displayname" else None
                found += self._run(lambda s: self._groups(s, scim_groups.list_groups(s, self.grant, only)))
        scim_filter = search_request.filter
        if scim_filter is not None:
            if not scim_filter.models and found:  # at the root: evaluated against each model found
                scim_filter = parametrize(ScimFilter, Union[tuple(dict.fromkeys(type(r) for r in found))])(str(scim_filter))  # noqa: UP007
            found = [r for r in found if scim_filter.match(r)]
        if search_request.sort_by is not None:
            descending = search_request.sort_order == SearchRequest.SortOrder.descending
            present = [r for r in found if search_request.sort_value(r) is not None]
            missing = [r for r in found if search_request.sort_value(r) is None]  # last, whichever the order
            found = sorted(present, key=search_request.sort_value, reverse=descending) + missing
        start = search_request.start_index_0 or 0
        stop = None if search_request.count is None else start + search_request.count
        return SearchPage(len(found), found[start:stop])

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        if self._is_user(resource_type):
            data = self._user_in(resource)
            return self._run(lambda s: self._user(s, scim_people.create_user(s, self.grant, data)))
        data = self._group_in(resource)
        return self._run(lambda s: self._groups(s, [scim_groups.create_group(s, self.grant, data)])[0])

    def update(self, resource_type: ResourceType, resource: Resource[Any], *, expected_version: str | None = None) -> Resource[Any]:
        version = _expected(expected_version)
        if self._is_user(resource_type):
            data = self._user_in(resource)
            return self._run(lambda s: self._user(s, scim_people.replace_user(s, self.grant, resource.id, data, version)))
        data = self._group_in(resource)
        return self._run(lambda s: self._groups(s, [scim_groups.replace_group(s, self.grant, resource.id, data, version)])[0])

    def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None) -> None:
        version = _expected(expected_version)
        op = scim_people.delete_user if self._is_user(resource_type) else scim_groups.delete_group
        self._run(op, self.grant, resource_id, version)

    # -- SCIM resources to the store's terms, and back -------------------------------------------

    def _user_in(self, resource: Resource[Any]) -> scim_people.UserIn:
        user: User = resource  # type: ignore[assignment]
        document = {k: v for k, v in user.model_dump().items() if k not in _COLUMNS}
        if len(repr(document)) > MAX_DOCUMENT:
            raise InvalidValueException(detail=f"This User's attributes take more than {MAX_DOCUMENT // 1024} KiB; send fewer.")
        emails = sorted(user.emails or [], key=lambda e: not e.primary)
        return scim_people.UserIn(
            user_name=user.user_name,
            external_id=user.external_id,
            active=user.active,  # absent: kept absent, and counts as active (RFC 7643 §4.1.1 leaves it to the provider)
            emails=[str(e.value) for e in emails if e.value],
            document=document,
        )

    @staticmethod
    def _group_in(resource: Resource[Any]) -> scim_groups.GroupIn:
        group: Group = resource  # type: ignore[assignment]
        members = [m for m in group.members or []]
        if any(m.type not in (None, "User") for m in members):
            raise InvalidValueException(detail="Only Users can be members of a Group here (nested groups are not supported): push the group's people instead.")
        return scim_groups.GroupIn(display_name=group.display_name, external_id=group.external_id, members=[(str(m.value), m.display) for m in members if m.value])

    def _user(self, s: Session, row: ScimUser) -> Resource[Any]:
        model = self.provider.model_for("User")
        data = dict(row.document or {})
        data.update(id=row.id, userName=row.user_name)
        if row.active is not None:
            data["active"] = row.active
        if row.external_id is not None:
            data["externalId"] = row.external_id
        groups = scim_people.groups_of(s, row.id)
        if groups:
            data["groups"] = [{"value": gid, "display": name, "$ref": f"Groups/{gid}", "type": "direct"} for gid, name in groups]
        user = model.model_validate(data)
        user.meta = Meta(resource_type="User", created=row.created_at, last_modified=row.updated_at, version=version_of(row))
        return user

    def _groups(self, s: Session, rows: list[ScimGroup]) -> list[Resource[Any]]:
        model = self.provider.model_for("Group")
        members = scim_groups.members_of(s, [g.id for g in rows])
        out = []
        for row in rows:
            data: dict[str, Any] = {"id": row.id, "displayName": row.display_name}
            if row.external_id is not None:
                data["externalId"] = row.external_id
            if members[row.id]:
                data["members"] = [{"value": uid, "display": name, "$ref": f"Users/{uid}", "type": "User"} for uid, name in members[row.id]]
            group = model.model_validate(data)
            group.meta = Meta(resource_type="Group", created=row.created_at, last_modified=row.updated_at, version=version_of(row))
            out.append(group)
        return out
