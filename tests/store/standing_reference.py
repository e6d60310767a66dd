"""The reference model for tests/store/test_standing_model.py: a key's standing from plain facts.

It knows nothing of Purser's code: it keeps the facts in plain dictionaries and decides
with the rules as the design states them (docs/design.md, "A key's standing").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


from store.types import Role

USD = 1_000_000
CAPS = {Role.ADMIN: 5, Role.BILLING: 3}
PROJECTS = ("search", "chat")


# -- the reference model ---------------------------------------------------------------------


@dataclass
class ModelKey:
    owner: str
    project: str
    secret: str
    limit: int | None  # the role's preset when it was made, a monthly limit
    expires_at: datetime | None
    revoked: bool = False
    lease: timedelta | None = None  # the length it was first given; what each extension adds
    end_told: bool = False  # its owner was told its lease ended (once, by the clock)


@dataclass
class Model:
    roles: dict[str, Role] = field(default_factory=dict)  # active members only
    keys: dict[int, ModelKey] = field(default_factory=dict)
    budgets: dict[str, int | None] = field(default_factory=lambda: {p: None for p in PROJECTS})
    # temporary raises approved: (project, amount, when it ends); each counts from its approval until its end
    raises: list[tuple[str, int, datetime]] = field(default_factory=list)
    manual: set[str] = field(default_factory=set)
    cap: int | None = None
    funded: bool = False
    balance: int = 0
    spend: dict[tuple[str, str], int] = field(default_factory=dict)  # (project, "*" or key id, month) -> micros
    seen: set[str] = field(default_factory=set)
    allowlist: bool = False  # the workspace allows 203.0.113.0/24 only
    deleted: bool = False

    def spent(self, what: str, month: str) -> int:
        return self.spend.get((what, month), 0)

    def workspace_hold(self, now: datetime) -> str | None:
        """What the workspace is paused for, as announced: its cap before its pool."""
        if self.cap is not None and self.spent("*", f"{now:%Y-%m}") >= self.cap:
            return "cap"
        if self.funded and self.balance <= 0:
            return "credit"
        return None

    def limit(self, project: str, now: datetime) -> int | None:
        """A project's budget plus the raises not yet ended; no budget, no limit (a raise adds to nothing)."""
        budget = self.budgets[project]
        if budget is None:
            return None
        return budget + sum(amount for where, amount, ends in self.raises if where == project and now < ends)

    def project_paused(self, project: str, now: datetime) -> bool:
        limit = self.limit(project, now)
        return project in self.manual or (limit is not None and self.spent(project, f"{now:%Y-%m}") >= limit)

    def may_extend(self, key_id: int, now: datetime) -> bool:
        """The design's rule for leases: only a key with an end still ahead is extended, by its owner,
        while that owner may hold keys; a lease that ended asks for a new key instead."""
        key = self.keys[key_id]
        holds = self.roles.get(key.owner) in (Role.ADMIN, Role.DEVELOPER)
        return holds and not key.revoked and not self.deleted and key.expires_at is not None and now < key.expires_at

    def ends_to_tell(self, now: datetime) -> set[int]:
        """The keys whose end the clock announces now: ended, not revoked, and not announced before."""
        return {k for k, key in self.keys.items() if key.expires_at is not None and key.expires_at <= now and not key.revoked and not key.end_told}

    def hears(self, key_id: int, now: datetime, client: str) -> tuple[int, str]:
        key, month = self.keys[key_id], f"{now:%Y-%m}"
        if key.revoked:
            return 401, "revoked"
        if key.owner not in self.roles:
            return 401, "owner_removed"
        if self.roles[key.owner] not in (Role.ADMIN, Role.DEVELOPER):
            return 401, "owner_role"
        if key.expires_at is not None and key.expires_at <= now:
            return 401, "expired"
        if self.allowlist and not client.startswith("203.0.113."):
            return 403, "ip_not_allowed"
        if self.cap is not None and self.spent("*", month) >= self.cap:
            return 402, "workspace_cap"
        if self.funded and self.balance <= 0:
            return 402, "credit_pool"
        if key.project in self.manual:
            return 403, "project_paused"
        limit = self.limit(key.project, now)
        if limit is not None and self.spent(key.project, month) >= limit:
            return 402, "project_budget"
        if key.limit is not None and self.spent(str(key_id), month) >= key.limit:
            return 402, "key_limit"
        return 200, "ok"
