"""Slack's directory signals: an account deactivated (or made a guest) suspends its memberships at once."""

from __future__ import annotations

import logging
from typing import Any

from store import directory, scim_people
from store.db import Database

log = logging.getLogger(__name__)


def user_changed(db: Database, team_id: str | None, user: dict[str, Any]) -> directory.Suspended | None:
    """``user_change``: deactivated, or converted to a guest (who has no place among a team's API keys)."""
    user_id, team = user.get("id"), user.get("team_id") or team_id
    if not user_id or not team:
        return None
    if user.get("deleted"):
        reason = "Slack account deactivated"
    elif user.get("is_restricted") or user.get("is_ultra_restricted"):
        reason = "Slack account converted to a guest"
    else:
        return None  # a reactivation restores nobody by itself: the Admins decide (store.directory)
    done = db.run(directory.suspend_person, team, user_id, reason)
    if done.workspaces:
        log.warning("suspended %s in %d workspace(s): %s", user_id, len(done.workspaces), reason)
    return done


def team_joined(db: Database, team_id: str | None, user: dict[str, Any]) -> int:
    """``team_join``: a new account may be someone the identity provider provisioned (docs/scim.md)."""
    team = user.get("team_id") or team_id
    email = (user.get("profile") or {}).get("email")
    return db.run(scim_people.joined_slack, team, email) if team and email else 0
