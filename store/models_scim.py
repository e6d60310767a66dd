"""The tables of SCIM provisioning (docs/scim.md): tokens, the identity provider's people and groups, and which group gives which role.

Kept apart from store/models.py (which stays readable in one sitting); alembic's env.py
and the tests import this module so its tables are part of ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, _enum
from store.types import BigIntPK, Role, utcnow


class ScimToken(Base):
    """A bearer token an identity provider sends; only its sha256 is kept (like a key's secret)."""

    __tablename__ = "scim_tokens"
    __table_args__ = (Index("ix_scim_tokens_workspace", "workspace_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    name: Mapped[str] = mapped_column(String(40))
    prefix: Mapped[str] = mapped_column(String(24))  # shown in lists; far too little to use it
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class ScimUser(Base):
    """A person as the identity provider describes them; linked to a member once Purser knows who they are in Slack."""

    __tablename__ = "scim_users"
    __table_args__ = (UniqueConstraint("workspace_id", "user_key"), Index("ix_scim_users_workspace_email", "workspace_id", "email"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the SCIM id: uuid4 hex
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    user_name: Mapped[str] = mapped_column(String(254))
    user_key: Mapped[str] = mapped_column(String(254))  # userName as compared (case-insensitive): unique per workspace
    external_id: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool | None] = mapped_column(Boolean)  # None: not said, which counts as active
    # the e-mail Purser matches in Slack: userName when it is one, else the primary e-mail
    email: Mapped[str | None] = mapped_column(String(254))
    # the rest of the resource as the provider sent it (names, e-mails …), never a password
    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    slack_user_id: Mapped[str | None] = mapped_column(String(32))  # found by e-mail (users.lookupByEmail)
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id"))
    # SCIM made the membership: leaving every mapped group ends it (a membership made in Slack is left alone)
    provisioned: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScimGroup(Base):
    __tablename__ = "scim_groups"
    __table_args__ = (UniqueConstraint("workspace_id", "name_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    display_name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))  # displayName as compared (case-insensitive)
    external_id: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScimGroupMember(Base):
    __tablename__ = "scim_group_members"
    __table_args__ = (Index("ix_scim_group_members_user", "user_id"),)

    group_id: Mapped[str] = mapped_column(ForeignKey("scim_groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("scim_users.id", ondelete="CASCADE"), primary_key=True)
    display: Mapped[str | None] = mapped_column(String(200))  # as the identity provider named the member, if it did


class ScimRoleMap(Base):
    """An Admin's rule: the members of this group (by display name) get this role here. ``*``: everyone provisioned."""

    __tablename__ = "scim_role_maps"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    name_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
