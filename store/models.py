"""The tables. Their meaning is described in docs/design.md ("The store")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Text, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.types import ActionStatus, BigIntPK, BudgetKind, Environment, InvitationStatus, KeyPolicy, KeyStatus, MemberStatus, Period, ProjectStatus, RequestKind, RequestState, Role, Scope, UTCDateTime, WorkspaceStatus, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _enum(cls: type) -> SAEnum:
    # Stored as plain strings: new values need no ALTER TYPE on PostgreSQL.
    return SAEnum(cls, native_enum=False, create_constraint=False, length=20, values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


Money = BigInteger  # micro-dollars


class Workspace(Base):
    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("team_id", "slug"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))  # the Slack team; several workspaces per team
    slug: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    environment: Mapped[Environment] = mapped_column(_enum(Environment))
    key_policy: Mapped[KeyPolicy] = mapped_column(_enum(KeyPolicy))
    cap_micros: Mapped[int | None] = mapped_column(Money)
    cap_period: Mapped[Period] = mapped_column(_enum(Period), default=Period.MONTHLY)
    alert_thresholds: Mapped[list[Any]] = mapped_column(default=lambda: [50, 80, 100])
    approvals_channel: Mapped[str | None] = mapped_column(String(32))
    alerts_channel: Mapped[str | None] = mapped_column(String(32))
    audit_channel: Mapped[str | None] = mapped_column(String(32))
    ip_allowlist: Mapped[list[Any]] = mapped_column(default=list)
    provider: Mapped[str] = mapped_column(String(20), default="local")
    provider_ref: Mapped[str | None] = mapped_column(String(120))  # the OpenRouter workspace's id (linked)
    provider_slug: Mapped[str | None] = mapped_column(String(50))  # ... and its slug, as people name it
    # "mirrored": the cap is kept as the OpenRouter workspace's budget; "unavailable": the
    # organisation has no workspace budgets (said once; quota leases alone hold the cap)
    provider_budgets: Mapped[str | None] = mapped_column(String(20))
    # allowed models and providers and zero data retention (store.policy); {} allows everything
    model_policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # One rebalance of the quota leases at a time (store.quota_ledger.claim): who holds it,
    # until when, and whether another was asked for meanwhile (the holder then runs again).
    leases_holder: Mapped[str | None] = mapped_column(String(32))
    leases_held_until: Mapped[datetime | None]
    leases_again: Mapped[bool] = mapped_column(Boolean, default=False)
    # the OpenRouter guardrail that carries the workspace's policy to keys outside any project
    provider_guardrail_ref: Mapped[str | None] = mapped_column(String(120))
    digest_frequency: Mapped[str] = mapped_column(String(10), default="daily")
    rotation_grace_hours: Mapped[int] = mapped_column(Integer, default=24)
    # The pool is enforced once it has been funded; until then spend is only counted.
    credit_funded: Mapped[bool] = mapped_column(Boolean, default=False)
    credit_balance_micros: Mapped[int] = mapped_column(Money, default=0)
    status: Mapped[WorkspaceStatus] = mapped_column(_enum(WorkspaceStatus), default=WorkspaceStatus.ACTIVE)
    paused_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<Workspace {self.id} {self.slug!r} {self.environment}>"


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("workspace_id", "slack_user_id"),
        Index("ix_members_workspace_role", "workspace_id", "role", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    slack_user_id: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[Role] = mapped_column(_enum(Role))
    status: Mapped[MemberStatus] = mapped_column(_enum(MemberStatus), default=MemberStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None]

    # Loaded when read, not with every member: nothing reads it often enough to pay a SELECT per load.
    workspace: Mapped[Workspace] = relationship(lazy="select")

    @property
    def label(self) -> str:
        return self.slack_user_id or self.email or f"member {self.id}"


class Invitation(Base):
    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_workspace_status", "workspace_id", "status"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    invitee_slack_id: Mapped[str | None] = mapped_column(String(32))
    invitee_email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[Role] = mapped_column(_enum(Role))
    inviter_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    status: Mapped[InvitationStatus] = mapped_column(_enum(InvitationStatus), default=InvitationStatus.PENDING)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))

    @property
    def invitee(self) -> str:
        return self.invitee_slack_id or self.invitee_email or "?"


class RoleTemplate(Base):
    __tablename__ = "role_templates"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    role: Mapped[Role] = mapped_column(_enum(Role), primary_key=True)
    key_limit_micros: Mapped[int | None] = mapped_column(Money)
    limit_period: Mapped[Period] = mapped_column(_enum(Period), default=Period.MONTHLY)
    key_lifetime_days: Mapped[int | None] = mapped_column(Integer)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("workspace_id", "slug"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    slug: Mapped[str] = mapped_column(String(40))
    budget_micros: Mapped[int | None] = mapped_column(Money)
    budget_period: Mapped[Period] = mapped_column(_enum(Period), default=Period.MONTHLY)
    status: Mapped[ProjectStatus] = mapped_column(_enum(ProjectStatus), default=ProjectStatus.ACTIVE)
    paused_reason: Mapped[str | None] = mapped_column(String(200))
    # "budget" when spend paused it (the period rollover resumes it), "manual" otherwise
    paused_by: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the project's own model policy; None follows the workspace's (store.policy)
    model_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # the OpenRouter guardrail that carries the policy to the project's keys
    provider_guardrail_ref: Mapped[str | None] = mapped_column(String(120))


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_workspace_member", "workspace_id", "member_id"),
        Index("ix_api_keys_member_name", "member_id", "name"),  # one live key of a name per owner
        Index("ix_api_keys_project", "project_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), unique=True)
    rotated_from_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    prefix: Mapped[str] = mapped_column(String(24))  # shown to people; not enough to use the key
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the secret
    provider: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(120))
    limit_micros: Mapped[int | None] = mapped_column(Money)
    limit_period: Mapped[Period] = mapped_column(_enum(Period), default=Period.MONTHLY)
    expires_at: Mapped[datetime | None]
    status: Mapped[KeyStatus] = mapped_column(_enum(KeyStatus), default=KeyStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # the provider's cumulative usage already turned into usage events (OpenRouter sync)
    synced_usage_micros: Mapped[int] = mapped_column(Money, default=0)
    # Quota lease (store.quota): the cumulative usage up to which the provider lets the key
    # spend — never below the limit actually set there. None: no budget bounds the key.
    lease_ceiling_micros: Mapped[int | None] = mapped_column(Money)
    lease_granted_micros: Mapped[int | None] = mapped_column(Money)  # the last lease's size
    # when to read the key's usage next (between full syncs), and how long it has been idle
    poll_after: Mapped[datetime | None]
    poll_idle_seconds: Mapped[int] = mapped_column(Integer, default=0)

    # Loaded when read (store.views joins them where a key is shown), not with every key.
    member: Mapped[Member] = relationship(lazy="select", foreign_keys=[member_id])
    project: Mapped[Project | None] = relationship(lazy="select")


class KeyReveal(Base):
    __tablename__ = "key_reveals"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)  # Fernet token; wiped on reveal
    expires_at: Mapped[datetime]
    revealed_at: Mapped[datetime | None]
    wiped_at: Mapped[datetime | None]


class CreditEntry(Base):
    __tablename__ = "credit_ledger"
    __table_args__ = (Index("ix_credit_ledger_workspace_at", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    kind: Mapped[str] = mapped_column(String(10))  # topup | spend
    amount_micros: Mapped[int] = mapped_column(Money)  # + for top-ups, - for spend
    balance_after_micros: Mapped[int] = mapped_column(Money)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageEvent(Base):
    """Spend as reported, one row an event; written only by store.ingest.ingest_usage.

    No foreign keys: ingest has just read the key row that names the workspace and the
    project, and keys, projects and workspaces are revoked, paused or marked deleted,
    never removed. Three constraint checks a row, each locking its parent row, cost
    ingest more than the rest of the insert (docs/benchmarks.md, "Ingest").

    One index: the primary key, which is the idempotency key (workspace, external id).
    Nothing reads a surrogate id, and nothing looks events up by key (reports read
    spend_hours; the statement scans a workspace's month): each would be one more index
    every event moves (migration 0009 dropped both).
    """

    __tablename__ = "usage_events"

    workspace_id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)  # workspaces.id
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[int | None] = mapped_column(BigIntPK)  # projects.id
    key_id: Mapped[int] = mapped_column(BigIntPK)  # api_keys.id
    amount_micros: Mapped[int] = mapped_column(Money)
    model: Mapped[str | None] = mapped_column(String(120))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    occurred_at: Mapped[datetime]
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)


class SpendTotal(Base):
    """Running spend per scope and period, so no budget check ever scans history."""

    __tablename__ = "spend_totals"

    scope: Mapped[Scope] = mapped_column(_enum(Scope), primary_key=True)
    scope_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period: Mapped[Period] = mapped_column(_enum(Period), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    amount_micros: Mapped[int] = mapped_column(Money, default=0)


class AlertSent(Base):
    __tablename__ = "alerts_sent"

    budget_kind: Mapped[BudgetKind] = mapped_column(_enum(BudgetKind), primary_key=True)
    budget_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    threshold: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    spent_micros: Mapped[int] = mapped_column(Money)
    limit_micros: Mapped[int] = mapped_column(Money)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_workspace_state", "workspace_id", "state"),
        Index("ix_requests_requester_state", "requester_id", "state"),  # "you already asked for a key called …"
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    kind: Mapped[RequestKind] = mapped_column(_enum(RequestKind))
    requester_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str | None] = mapped_column(String(500))
    state: Mapped[RequestState] = mapped_column(_enum(RequestState), default=RequestState.PENDING)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(String(500))
    auto_approved: Mapped[bool] = mapped_column(Boolean, default=False)
    # approvers per role the policy asked for when it was opened (store.approval_rules); None: one Admin
    approval_needs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Loaded when read (store.views joins them where a request is shown), not with every request.
    requester: Mapped[Member] = relationship(lazy="select", foreign_keys=[requester_id])
    decided_by: Mapped[Member | None] = relationship(lazy="select", foreign_keys=[decided_by_id])


class Action(Base):
    """The outbox: work for the workers, committed with the decision that caused it."""

    __tablename__ = "actions"
    __table_args__ = (Index("ix_actions_status_run_after", "status", "run_after"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex; names provider objects
    kind: Mapped[str] = mapped_column(String(40))
    workspace_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[ActionStatus] = mapped_column(_enum(ActionStatus), default=ActionStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    # a worker's lease: a duplicate delivery skips a claimed action; a dead worker's lease lapses
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class AuditHead(Base):
    """The tip of each workspace's audit chain; locked to append one event at a time."""

    __tablename__ = "audit_heads"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("workspace_id", "seq"), Index("ix_audit_events_at", "workspace_id", "at"))

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60))
    resource: Mapped[str] = mapped_column(String(120))
    outcome: Mapped[str] = mapped_column(String(10))  # ok | denied
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class SlackMessage(Base):
    """Where a message Purser posted lives, so a retry or a later change edits it instead of posting again."""

    __tablename__ = "slack_messages"

    ref: Mapped[str] = mapped_column(String(80), primary_key=True)  # e.g. "request:12", "key_ready:7"
    channel: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelBinding(Base):
    """A Slack channel whose commands default to one workspace (`/ai-workspace use`)."""

    __tablename__ = "channel_bindings"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    bound_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthzRefusal(Base):
    """Gateway refusals counted per key, reason and day (for the digest), not audited one by one."""

    __tablename__ = "authz_refusals"

    day: Mapped[datetime] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    key_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class SlackAccess(Base):
    """Slack took Purser's access away (``tokens_revoked``, ``app_uninstalled``): one row for the install."""

    __tablename__ = "slack_access"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    revoked_at: Mapped[datetime]
    why: Mapped[str] = mapped_column(String(40))
