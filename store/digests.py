"""The audit digest: what changed in a workspace, who did it, what was refused, and whether the chain holds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from store.audit import Verification, events_between, verify_chain
from store.authz import refusals_between
from store.models import AuditEvent, Workspace
from store.types import utcnow

#: actions a reader of the digest wants named one by one, not only counted
NOTABLE = (
    "member.role",
    "member.add",
    "member.remove",
    "member.leave",
    "invitation.accept",
    "key.create",
    "key.rotate",
    "key.revoke",
    "key.retire",
    "budget.set",
    "cap.set",
    "credit.add",
    "project.pause",
    "project.resume",
    "workspace.pause",
    "workspace.resume",
    "workspace.policy",
    "workspace.allowlist_add",
    "workspace.allowlist_remove",
    "workspace.delete",
)
MAX_LISTED = 25


@dataclass(frozen=True)
class Digest:
    workspace_id: int
    workspace: str
    since: datetime
    until: datetime
    counts: dict[str, int]
    notable: list[AuditEvent]
    denials: list[AuditEvent]
    verification: Verification
    more_notable: int = 0
    #: (key name, reason, count) refused at the gateway in the window
    gateway_refusals: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def digest_window(frequency: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or utcnow()
    until = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return until - timedelta(days=7 if frequency == "weekly" else 1), until


def build_digest(s: Session, workspace_id: int, since: datetime, until: datetime) -> Digest:
    ws = s.get(Workspace, workspace_id)
    events = events_between(s, workspace_id, since, until)
    counts = Counter(e.action for e in events if e.outcome == "ok")
    notable = [e for e in events if e.outcome == "ok" and e.action in NOTABLE]
    denials = [e for e in events if e.outcome == "denied"]
    return Digest(
        workspace_id=workspace_id,
        workspace=ws.slug,
        since=since,
        until=until,
        counts=dict(counts.most_common()),
        notable=notable[:MAX_LISTED],
        denials=denials[:MAX_LISTED],
        verification=verify_chain(s, workspace_id),
        more_notable=max(0, len(notable) - MAX_LISTED),
        gateway_refusals=refusals_between(s, workspace_id, since, until)[:MAX_LISTED],
    )


def due_digests(s: Session, now: datetime | None = None) -> list[int]:
    """Workspaces whose digest is due now: daily ones every day, weekly ones on Mondays."""
    from sqlalchemy import select

    from store.types import WorkspaceStatus

    now = now or utcnow()
    frequencies = ["daily", "weekly"] if now.weekday() == 0 else ["daily"]
    return list(
        s.scalars(
            select(Workspace.id).where(
                Workspace.status != WorkspaceStatus.DELETED, Workspace.digest_frequency.in_(frequencies), Workspace.audit_channel.is_not(None)
            )
        )
    )
