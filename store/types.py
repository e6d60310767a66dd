"""Column types and enumerations shared by the models."""

from __future__ import annotations

import enum
from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no zones), always handed back timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Role(enum.StrEnum):
    ADMIN = "admin"
    DEVELOPER = "developer"
    VIEWER = "viewer"
    BILLING = "billing"

    @property
    def title(self) -> str:
        return _ROLE_TITLES[self]

    @classmethod
    def parse(cls, text: str) -> "Role":
        from store.errors import InvalidInput

        wanted = text.strip().lower().replace("-", "_").replace(" ", "_")
        wanted = _ROLE_ALIASES.get(wanted, wanted)
        try:
            return cls(wanted)
        except ValueError:
            raise InvalidInput(
                f"“{text[:40]}” is not a role. Pick one of: admin, developer, viewer, billing."
            ) from None


_ROLE_TITLES = {
    Role.ADMIN: "Admin",
    Role.DEVELOPER: "Developer",
    Role.VIEWER: "Viewer",
    Role.BILLING: "Billing Manager",
}
_ROLE_ALIASES = {"billing_manager": "billing", "dev": "developer", "administrator": "admin"}

#: the seed's limits on how many members may hold a role at once
ROLE_CAPS: dict[Role, int] = {Role.ADMIN: 5, Role.BILLING: 3}


class Environment(enum.StrEnum):
    PRODUCTION = "production"
    STAGING = "staging"
    DEVELOPMENT = "development"


class KeyPolicy(enum.StrEnum):
    APPROVAL = "approval"  # every key a non-admin asks for is decided by an admin
    AUTO = "auto"  # approved at once while the limit is within the role's preset


class Period(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    NONE = "none"  # never resets: the budget is for the project's whole life


class MemberStatus(enum.StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"
    SUSPENDED = "suspended"  # their Slack account was deactivated; an Admin may restore them


class WorkspaceStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DELETED = "deleted"


class ProjectStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class KeyStatus(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    REVOKED = "revoked"


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class RequestKind(enum.StrEnum):
    KEY = "key"
    INVITE = "invite"
    BUDGET_CHANGE = "budget_change"
    BUDGET_RAISE = "budget_raise"  # a temporary raise: an amount on top of the budget until it ends
    CAP_CHANGE = "cap_change"
    ROLE_CHANGE = "role_change"
    CREDIT_TOPUP = "credit_topup"
    MODEL_ACCESS = "model_access"  # a model outside the policy, asked for
    KEY_EXTEND = "key_extend"  # a leased key's end moved on by its lease's length (store.leases)


class RequestState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class ActionKind(enum.StrEnum):
    """Every kind of outbox action; the workers' table of handlers is keyed by it (a kind with no handler fails at import)."""

    PROVISION_KEY = "provision_key"
    ROTATE_KEY = "rotate_key"
    RETIRE_KEY = "retire_key"
    REVOKE_KEY = "revoke_key"
    DISABLE_KEY = "disable_key"
    ENABLE_KEY = "enable_key"
    SYNC_KEY_STATE = "sync_key_state"
    NOTIFY_KEY_READY = "notify_key_ready"
    PAUSE_PROJECT = "pause_project"
    RESUME_PROJECT = "resume_project"
    PAUSE_WORKSPACE = "pause_workspace"
    RESUME_WORKSPACE = "resume_workspace"
    APPLY_BUDGET = "apply_budget"
    APPLY_CAP = "apply_cap"
    POST_ALERT = "post_alert"
    POST_SPIKE = "post_spike"  # spend far above its usual for the hour of the week: the alerts channel told, with a chart
    ANNOUNCE_ROLLOVER = "announce_rollover"
    ANNOUNCE_RAISE = "announce_raise"  # a temporary raise began or ended: the alerts channel told, the leases rebalanced
    REQUEST_OPENED = "request_opened"
    REQUEST_DECIDED = "request_decided"
    REQUEST_PROGRESS = "request_progress"  # an approval that leaves others needed: the approval message shows who is still needed
    SEND_INVITATION = "send_invitation"
    ACTION_FAILED = "action_failed"
    REFRESH_AUTHZ = "refresh_authz"
    REBALANCE_LEASES = "rebalance_leases"  # quota leases at the provider (store.quota)
    APPLY_MODEL_POLICY = "apply_model_policy"  # a project's guardrail at the provider
    LINK_WORKSPACE = "link_workspace"  # create or adopt the provider's workspace
    LEAK_NOTICE = "leak_notice"  # a leaked key revoked: the thread, its owner, the Admins told
    FOREIGN_SECRET_NOTICE = "foreign_secret_notice"  # another vendor's credential posted: warn
    MEMBER_SUSPENDED = "member_suspended"  # a deactivated Slack user's memberships: the Admins told
    SCIM_LOOKUP = "scim_lookup"  # a provisioned person not yet found in Slack: look them up by e-mail
    SCIM_REFUSED = "scim_refused"  # the identity provider asked for what the rules refuse (a role cap): the Admins told
    USAGE_CHART = "usage_chart"  # an /ai-usage breakdown's chart, drawn and sent to the asker's DM
    HOME_CHART = "home_chart"  # this hour's chart for a person's App Home
    POST_STATEMENT = "post_statement"  # a monthly statement to its Admins and Billing Managers (or to the one who asked)
    POST_REVIEW = "post_review"  # an access review's pages to each Admin by DM, posted or brought up to date
    REMIND_REVIEW = "remind_review"  # an open review's undecided items: the Admins reminded
    REVIEW_COMPLETE = "review_complete"  # every item decided: the outcome and its CSV to the Admins
    KEY_TRANSFERRED = "key_transferred"  # a key handed to another member: its old and new owner told
    LEASE_NOTICE = "lease_notice"  # a leased key's owner told: a day or an hour left (with Extend), or its end


class ActionStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class BudgetKind(enum.StrEnum):
    PROJECT = "project"
    CAP = "cap"  # the workspace spending cap
    CREDIT = "credit"  # the workspace's credit pool


class Scope(enum.StrEnum):
    KEY = "key"
    PROJECT = "project"
    WORKSPACE = "workspace"
