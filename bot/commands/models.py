"""Models: `/ai-workspace models` (the model policy; Admins change it) and `/ai-models` (what the policy lets you call, and asking for more)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from bot import texts
from bot.blocks.common import code, lit
from bot.commands.common import one_of, workspace_id
from bot.context import Asker
from bot.parser import WORKSPACE_OPTIONS, Parsed, UsageError, parse
from bot.replies import Reply
from store import policy
from store.catalog import filtered, price_file_models
from store.db import Database
from store.policy import ModelPolicy

COMMAND = "/ai-models"
OPTIONS = {**WORKSPACE_OPTIONS, "--project": "project", "--reason": "reason"}
#: a provider's name → its models, shaped like OpenRouter's GET /models items (``workers.catalog``)
Catalog = Callable[[str], list[dict[str, Any]]]
#: past this many lines a listing says how many more there are instead
MOST_LISTED = 150
_PER_MILLION = Decimal(1_000_000)


# -- /ai-workspace models -----------------------------------------------------------------


def workspace_models(db: Database, asker: Asker, ws_id: int, parsed: Parsed) -> Reply:
    """`/ai-workspace models [allow …|providers …|zdr on|off|any|reset] [--project P]`."""
    verb = (parsed.word(1) or "show").lower()
    project = parsed.options.get("project")
    args = parsed.words[2:]
    if verb == "show":
        return Reply(policy_text(db.run(policy.show, asker.actor, ws_id, project)))
    if verb == "allow":
        if not args:
            raise UsageError("Name the models: `/ai-workspace models allow openai/gpt-4o anthropic/*` (or `models any`).")
        change = db.run(policy.set_models, asker.actor, ws_id, args, project=project)
    elif verb == "any":
        change = db.run(policy.set_models, asker.actor, ws_id, None, project=project)
    elif verb == "providers":
        if not args:
            raise UsageError("Name the providers: `/ai-workspace models providers openai anthropic` (or `providers any`).")
        named = [a.lower() for a in args]
        if "any" in named and len(named) > 1:
            raise UsageError("`any` stands alone: `/ai-workspace models providers any` allows every provider.")
        change = db.run(policy.set_providers, asker.actor, ws_id, None if named == ["any"] else args, project=project)
    elif verb == "zdr":
        required = one_of(parsed.word(2), ("on", "off"), "way for zero data retention") == "on"
        change = db.run(policy.set_zdr, asker.actor, ws_id, required, project=project)
    elif verb == "reset":
        if project is None:
            raise UsageError("Say which project follows the workspace again: `/ai-workspace models reset --project search`.")
        change = db.run(policy.reset, asker.actor, ws_id, project)
    else:
        raise UsageError(f"`{lit(verb, 20)}` is not something `/ai-workspace models` does: show, allow, providers, zdr, any or reset.")
    if change.follows:
        return Reply(f"✅ Project {code(change.project)} follows the model policy of {code(change.workspace)} again: {describe(change.policy)}.")
    where = f"project {code(change.project)} of {code(change.workspace)}" if change.project else code(change.workspace)
    return Reply(f"✅ Model policy of {where}: {describe(change.policy)}.")


def policy_text(shown: policy.Shown) -> str:
    lines = [f"*Model policy of {code(shown.workspace)}*: {describe(shown.policy)}."]
    if shown.project is not None:
        how = "follows the workspace's" if shown.follows else f"has its own: {describe(shown.effective)}"
        lines.append(f"Project {code(shown.project)} {how}.")
    elif shown.own:
        lines.append("*Projects with a policy of their own*")
        lines += [f"• {code(slug)}: {describe(own)}" for slug, own in shown.own]
        lines.append("Every other project follows the workspace.")
    else:
        lines.append("Every project follows it.")
    return "\n".join(lines)


def describe(p: ModelPolicy) -> str:
    models = "any model" if p.models is None else "only " + ", ".join(code(m) for m in p.models)
    providers = "any provider" if p.providers is None else "only " + ", ".join(code(v) for v in p.providers)
    zdr = "zero data retention required" if p.zdr else "zero data retention not required"
    return f"{models}; {providers}; {zdr}"


# -- /ai-models ---------------------------------------------------------------------------


def handle(db: Database, asker: Asker, text: str, catalog: Catalog | None = None) -> Reply:
    parsed = parse(text, options=OPTIONS)
    sub = (parsed.word(0) or "list").lower()
    if sub == "help":
        return Reply(texts.HELP[COMMAND])
    if sub not in ("list", "request"):
        raise UsageError(f"`{lit(sub, 20)}` is not something /ai-models does.")
    ws_id = workspace_id(db, asker, parsed)
    project = parsed.options.get("project")
    if sub == "request":
        wanted = parsed.words[1:]
        if len(wanted) != 1:
            raise UsageError('Name one model: `/ai-models request anthropic/claude-3.5-sonnet --reason "…"`.')
        req = db.run(policy.request_model, asker.actor, ws_id, wanted[0], project=project, reason=parsed.options.get("reason"))
        where = f"project {code(req.payload['project'])}" if req.payload.get("project") else "the workspace"
        return Reply(f"📨 Asked the Admins to allow {code(req.payload['model'])} in {where} — request #{req.id}.")
    shown = db.run(policy.show, asker.actor, ws_id, project)
    if catalog is not None:
        return Reply(listing_text(shown, catalog(shown.provider)))
    if shown.provider == "local":  # answered in the ack: the price table needs nothing from outside
        return Reply(listing_text(shown, price_file_models()))
    return Reply(texts.NO_CATALOG.format(provider=lit(shown.provider, 40)))


def listing_text(shown: policy.Shown, catalog: list[dict[str, Any]]) -> str:
    found = filtered(shown.effective, catalog)
    where = f"project {code(shown.project)} of {code(shown.workspace)}" if shown.project else code(shown.workspace)
    source = "Purser's price table" if shown.provider == "local" else f"{lit(shown.provider, 40)}'s catalog"
    lines = [f"*Models for {where}*: {len(found.allowed)} of the {found.total} in {source} are allowed ({describe(shown.effective)})."]
    lines += [_line(item) for item in found.allowed[:MOST_LISTED]]
    if len(found.allowed) > MOST_LISTED:
        lines.append(f"… and {len(found.allowed) - MOST_LISTED} more.")
    lines.append(texts.ASK_FOR_MODEL)
    return "\n".join(lines)


def _line(item: dict[str, Any]) -> str:
    name = item.get("name")
    # a name that only repeats the id (the price table's bare names) says nothing more
    same = isinstance(name, str) and name.lower() in (item["id"].lower(), item["id"].partition("/")[2].lower())
    named = f" {lit(name, 80)}" if isinstance(name, str) and name and not same else ""
    pricing = item.get("pricing") if isinstance(item.get("pricing"), dict) else {}
    return f"• {code(item['id'])}{named} — {_usd(pricing.get('prompt'))} in / {_usd(pricing.get('completion'))} out per million tokens"


def _usd(per_token: Any) -> str:
    """OpenRouter gives USD per token as a string; shown per million tokens, as prices are quoted."""
    try:
        value = Decimal(str(per_token)) * _PER_MILLION
    except (InvalidOperation, ValueError):
        return "?"
    if not value.is_finite() or value < 0:  # OpenRouter's routers say -1: the price depends on where it goes
        return "varies"
    if value == 0:
        return "free"
    shown = format(value.quantize(Decimal("0.0001")).normalize(), "f")
    whole, _, cents = shown.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"
