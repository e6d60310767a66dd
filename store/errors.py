"""Typed domain errors. Their messages are read by people: say which rule and which numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class DomainError(Exception):
    """Base of everything the store refuses on purpose."""

    #: refusals of policy (who may, how many) are audited as denials
    audited = False

    def __init__(self, message: str, *, see: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        #: the read operation that shows what would help (``LIST_KEYS`` …): each front end
        #: (Slack, the CLI) names its own way to run it after the message
        self.see = see
        self.details = details

    def __str__(self) -> str:
        return self.message


#: what ``DomainError.see`` names
LIST_KEYS, LIST_PROJECTS, LIST_WORKSPACES = "list_keys", "list_projects", "list_workspaces"


class InvalidInput(DomainError):
    """What was asked for does not make sense; the message says how to say it right."""


class NotFound(DomainError):
    """The thing named does not exist (or is not visible to the one asking)."""


class NotYours(NotFound):
    """Someone else's key or invitation, named by its id: answered as if it did not exist,
    so nothing about it leaks, yet audited as the denial it is."""

    audited = True


class PermissionDenied(DomainError):
    """The actor's role does not allow this. Carries the roles that would."""

    audited = True

    def __init__(self, message: str, *, needed: tuple[str, ...] = (), **details: Any) -> None:
        super().__init__(message, **details)
        self.needed = needed


class LimitReached(DomainError):
    """A cap would be exceeded (admins ≤ 5, budgets within the cap …)."""

    audited = True


class Conflict(DomainError):
    """The state moved on: somebody decided first, the key was already revealed …"""

    def __init__(
        self,
        message: str,
        *,
        decided_by: str | None = None,
        decided_at: datetime | None = None,
        state: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.decided_by = decided_by
        self.decided_at = decided_at
        self.state = state
