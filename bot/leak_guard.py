"""Message events: every message Purser can see is looked at once for credentials, then forgotten.

Purser is subscribed to messages in the channels, private channels, group DMs and DMs it
is in, edits included. The text is scanned in memory (store.leak_scan) and never stored
or logged; a Purser key found is revoked at once (store.leaks), another vendor's
credential is warned about.
"""

from __future__ import annotations

import logging
from typing import Any

from store import leak_scan, leaks
from store.db import Database

log = logging.getLogger(__name__)

#: subtypes that carry no new text a person wrote (a deletion, Purser's own posts, joins)
SKIPPED = {"message_deleted", "channel_join", "channel_leave", "bot_message", "message_replied", "channel_topic", "channel_purpose"}


def texts_of(event: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """The text to scan, who posted it and its ts: an edit's new text, a file snippet's preview too."""
    message = event.get("message") if event.get("subtype") == "message_changed" else event
    message = message or {}
    parts = [str(message.get("text") or "")]
    for f in message.get("files") or []:
        parts += [str(f.get(k) or "") for k in ("preview", "plain_text", "preview_plain_text")]
    for attachment in message.get("attachments") or []:
        parts += [str(attachment.get(k) or "") for k in ("text", "fallback", "pretext")]
    return "\n".join(p for p in parts if p), message.get("user"), message.get("ts") or event.get("ts")


def inspect(db: Database, team_id: str | None, event: dict[str, Any]) -> leaks.Outcome | None:
    """Scan one message event; act on what it holds. Returns what was done (None: nothing found)."""
    if event.get("subtype") in SKIPPED or event.get("bot_id"):
        return None
    text, poster, ts = texts_of(event)
    found = leak_scan.scan(text)
    del text  # nothing below needs it, and nothing may keep it
    if not found:
        return None
    source = leaks.Source(team_id=team_id, channel=event.get("channel"), ts=ts, poster=poster)
    outcome = db.run(leaks.report_leak, found.secret_hashes, source) if found.secret_hashes else leaks.Outcome()
    if found.vendors:
        db.run(leaks.report_foreign, found.vendors, source)
    if outcome.revoked:
        log.warning("revoked %d leaked key(s) seen in a message in %s", len(outcome.revoked), source.channel)
    return outcome
