"""Every slash command, and which of them Slack's ack answers itself.

A command that reads or changes the store is handed to a worker when there is a queue
(see ``bot/handoff.py``): the ack then costs Slack's 3-second window next to nothing,
however busy the store is. Help, and the form `/ai-key new` opens (its trigger id
lasts 3 s and belongs to the web process that got it), are answered in the ack.
"""

from __future__ import annotations

from typing import Callable

from bot.commands import audit, budget, credits, invite, key, team, usage, workspace
from bot.commands.parser import UsageError, parse
from bot.replies import Reply

COMMANDS: dict[str, Callable[..., Reply]] = {
    "/ai-key": key.handle,
    "/ai-invite": invite.handle,
    "/ai-team": team.handle,
    "/ai-budget": budget.handle,
    "/ai-credits": credits.handle,
    "/ai-usage": usage.handle,
    "/ai-audit": audit.handle,
    "/ai-workspace": workspace.handle,
}


def answered_at_once(command: str, text: str) -> bool:
    """Help, a line the parser refuses, and the key form need no worker; anything else may."""
    if command == "/ai-key":
        try:
            parsed = parse(text, options=key.OPTIONS, flags=key.FLAGS)
        except UsageError:
            return True
        sub = (parsed.word(0) or "").lower()
        return sub in ("", "help") or (sub == "new" and key.opens_form(parsed))
    first = text.split(None, 1)[0].lower() if text.strip() else ""
    return first == "help"
