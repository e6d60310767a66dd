"""Every slash command, and which of them Slack's ack answers itself.

A command that reads or changes the store is handed to a worker when there is a queue
(see ``bot/handoff.py``): the ack then costs Slack's 3-second window next to nothing,
however busy the store is. Help, and the form `/ai-key new` opens (its trigger id
lasts 3 s and belongs to the web process that got it), are answered in the ack.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from bot import texts
from bot.commands import audit, budget, credits, invite, key, models, team, usage, workspace
from bot.context import Asker
from bot.parser import UsageError, parse
from bot.replies import Reply, guarded
from store.db import Database

COMMANDS: dict[str, Callable[..., Reply]] = {
    "/ai-key": key.handle,
    "/ai-invite": invite.handle,
    "/ai-team": team.handle,
    "/ai-budget": budget.handle,
    "/ai-credits": credits.handle,
    "/ai-usage": usage.handle,
    "/ai-audit": audit.handle,
    "/ai-workspace": workspace.handle,
    "/ai-models": models.handle,
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


class Answers:
    """A command a worker carries out, answered as Slack's response_url takes it (``workers.runtime.CommandDesk``)."""

    def __init__(self, db: Database, *, catalog: models.Catalog | None = None) -> None:
        self.db = db
        self.catalog = catalog

    def carry_out(self, command: str, team_id: str, user_id: str, channel_id: str | None, text: str) -> dict[str, Any] | None:
        handler = COMMANDS.get(command)
        if handler is None:
            return None
        if command == models.COMMAND:  # a worker can read a provider's catalog; the ack has only the price table
            handler = partial(handler, catalog=self.catalog)
        reply = guarded(command, handler, self.db, Asker(team_id, user_id, channel_id), text)
        if reply.modal is not None:  # only the ack can open a form; answered_at_once keeps those in the ack
            reply = Reply(texts.NO_FORM.format(command=command))
        if self.db.deferred():
            reply.text = f"{reply.text}\n{texts.QUEUED}".strip()
        return reply.ack_kwargs()

    @staticmethod
    def notice(text: str) -> dict[str, Any]:
        return Reply(text).ack_kwargs()
