"""The directory sync: Slack's whole `users.list`, read page by page, and what events may have missed applied."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from store import directory
from store.db import Database

log = logging.getLogger(__name__)

PAGE = 200  # Slack advises 200 a page for users.list (Tier 2: about 20 calls a minute)
MOST_PAGES = 5000  # a million people: past that, the listing is not believed complete


def read_directory(client) -> tuple[list[directory.Person], bool]:
    """Everyone Slack lists, and whether the listing is complete (a failure halfway makes it not)."""
    people: list[directory.Person] = []
    cursor = None
    try:
        for _ in range(MOST_PAGES):
            page = client.users_list(limit=PAGE, cursor=cursor) if cursor else client.users_list(limit=PAGE)
            for user in page.get("members") or []:
                if user.get("id"):
                    people.append(directory.Person(user["id"], bool(user.get("deleted") or user.get("is_restricted") or user.get("is_ultra_restricted"))))
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return people, True
    except SlackApiError as exc:
        # Rate limits are waited out by the client's retry handler first; what is left is a failure.
        log.warning("the directory listing failed after %d people (%s): nothing is changed", len(people), exc.response.get("error"))
        return people, False
    except Exception as exc:  # a network failure halfway: the same — a partial listing proves nothing
        log.warning("the directory listing failed after %d people (%s): nothing is changed", len(people), type(exc).__name__)
        return people, False
    log.warning("the directory listing went past %d pages: not believed complete, nothing is changed", MOST_PAGES)
    return people, False


def sync(db: Database, client, team_id: str) -> tuple[list[str], bool]:
    """Suspend whoever the complete directory says is deactivated but Purser still has active; (who, complete)."""
    people, complete = read_directory(client)
    suspended = db.run(directory.reconcile, team_id, people, complete=complete)
    if suspended:
        log.warning("directory sync suspended %d member(s) whose deactivation no event told", len(suspended))
    return suspended, complete
