"""/ai-invite: invite people by Slack mention or e-mail, with a result per person."""

from __future__ import annotations

from bot import texts
from bot.blocks.common import lit
from bot.commands.common import workspace_id
from bot.parser import WORKSPACE_OPTIONS, UsageError, parse
from bot.context import Asker
from bot.replies import Reply
from store import invitations
from store.db import Database
from store.errors import InvalidInput
from store.types import Role

COMMAND = "/ai-invite"
OPTIONS = {**WORKSPACE_OPTIONS, "--role": "role", "-r": "role"}
ICONS = {"invited": "✉️", "requested": "📨", "already_member": "•", "already_invited": "•", "invalid": "⚠️", "role_full": "⛔"}


def handle(db: Database, asker: Asker, text: str) -> Reply:
    parsed = parse(text, options=OPTIONS)
    if not parsed.words or parsed.word(0, "").lower() == "help":
        return Reply(texts.HELP[COMMAND])
    if parsed.words[0].lower() in ("role", "list"):
        raise UsageError("Name people to invite: @someone or an e-mail address.")
    people, role = _people_and_role(parsed.words, parsed.options.get("role"))
    ws_id = workspace_id(db, asker, parsed)
    results = db.run(invitations.invite, asker.actor, ws_id, people, role)
    lines = [f"{ICONS.get(r.outcome, '•')} {_who(r.invitee)}: {lit(r.message, 300)}" for r in results]
    return Reply("\n".join(lines))


def _people_and_role(words: list[str], option: str | None) -> tuple[list[str], str]:
    """`/ai-invite @dee viewer` means what `--role viewer` means: a word that is a role is the role, never a person."""
    people, said = [], []
    for word in words:
        try:
            said.append(Role.parse(word))
        except InvalidInput:
            people.append(word)
    if option is not None:
        said.append(Role.parse(option))
    if len(set(said)) > 1:
        raise UsageError(f"Pick one role for this invitation, not {' and '.join(sorted({r.title for r in said}))}.")
    if not people:
        raise UsageError("Name people to invite: @someone or an e-mail address.")
    return people, (said[0].value if said else "developer")


def _who(invitee: str) -> str:
    return f"<@{invitee}>" if invitee[:1] in ("U", "W") and invitee.isalnum() else lit(invitee, 80)
