"""The tables of approval policy (store/approval_rules.py, store/approvals.py): each workspace's
own rules, and the approvals recorded on a request that needs more than one approver.

Kept apart from store/models.py (which stays readable in one sitting); alembic's env.py
and the tests import this module so its tables are part of ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, Money, _enum
from store.types import BigIntPK, RequestKind, Role, utcnow


class ApprovalRule(Base):
    """One rule of a workspace's own approval policy, in the order they are tried (``position``).

    A workspace with no rows follows the default of its key policy (``approval_rules.DEFAULTS``);
    its own rules are tried before those defaults, and the first rule that matches a request
    decides who has to approve it. Every match column left empty matches anything.
    """

    __tablename__ = "approval_rules"
    __table_args__ = (UniqueConstraint("workspace_id", "position"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    position: Mapped[int] = mapped_column(Integer)
    # what the rule matches
    kind: Mapped[RequestKind | None] = mapped_column(_enum(RequestKind))
    over_micros: Mapped[int | None] = mapped_column(Money)  # the request's amount is more than this
    under_micros: Mapped[int | None] = mapped_column(Money)  # … less than this
    project: Mapped[str | None] = mapped_column(String(40))  # a project's slug
    requester_role: Mapped[Role | None] = mapped_column(_enum(Role))
    within_preset: Mapped[bool] = mapped_column(Boolean, default=False)  # a key within its owner's role preset
    # what it asks for: approvers per role ({"admin": 2, "billing": 1}); empty is automatic approval
    needs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    set_by: Mapped[str] = mapped_column(String(80))  # the actor's label
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class RequestApproval(Base):
    """One approver's approval of a request, with the role they held when they gave it.

    Who is still needed is derived from these rows and the request's ``approval_needs``
    (``approval_rules.still_needed``), never kept as a flag. Nobody approves one request twice.
    """

    __tablename__ = "request_approvals"
    __table_args__ = (UniqueConstraint("request_id", "member_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    role: Mapped[Role] = mapped_column(_enum(Role))
    at: Mapped[datetime] = mapped_column(default=utcnow)
