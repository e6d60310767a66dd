"""`purser openrouter import`, the command line's side: read the organisation at OpenRouter, show the plan.

Reading is GETs only — workspaces, each one's budgets, keys and guardrails, and the
keys a guardrail holds — through the provider the wiring builds, in the CLI's own
process. The store decides and carries out (store/adoption.py); this module turns
OpenRouter's answers into its figures and the plan into lines a person reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from store.adoption_plan import ImportPlan, KeyAdoption, OrgBudget, OrgGuardrail, OrgKey, OrgWorkspace, WorkspacePlan
from store.money import format_money
from store.policy import ModelPolicy
from workers.providers.base import PermanentProviderError
from workers.providers.openrouter_http import amount_micros

#: the answers that mean "this organisation keeps no workspace budgets" (as workers.handlers.linked reads them)
NO_BUDGETS = (400, 402, 403, 404)
#: guardrail fields a Purser model policy cannot carry: a guardrail setting one is not adopted
OTHER_RULES = {
    "limit_usd": "a per-key budget",
    "ignored_models": "ignored models",
    "ignored_providers": "ignored providers",
    "content_filters": "content filters",
    "content_filter_builtins": "content filters",
    "enable_free_model_publication": "model training and publication settings",
    "enable_free_model_training": "model training and publication settings",
    "enable_paid_model_training": "model training and publication settings",
}
ZDR_GROUPS = ("enforce_zdr_anthropic", "enforce_zdr_google", "enforce_zdr_openai", "enforce_zdr_other", "enforce_zdr_xai")


def read_organisation(provider) -> list[OrgWorkspace]:
    """Every workspace of the organisation with its budgets, keys and guardrails (GETs only)."""
    return [_workspace(provider, w) for w in provider.list_workspaces()]


def _workspace(provider, w: dict[str, Any]) -> OrgWorkspace:
    refused = ""
    try:
        budgets: tuple[OrgBudget, ...] | None = tuple(
            OrgBudget(b.get("reset_interval") or "lifetime", amount_micros(b.get("limit_usd"), "a workspace budget")) for b in provider.workspace_budgets(w["id"])
        )
    except PermanentProviderError as exc:
        # A plan without workspace budgets answers 4xx; a refused management key is not that.
        if exc.status not in NO_BUDGETS or "management key" in str(exc):
            raise
        budgets, refused = None, str(exc)
    keys = tuple(_key(k) for k in provider.list_keys(workspace_id=w["id"]))
    guardrails = tuple(_guardrail(provider, g, w.get("default_guardrail_id")) for g in provider.list_guardrails(workspace_id=w["id"]))
    return OrgWorkspace(w["id"], w["slug"], w["name"], budgets, refused, keys, guardrails)


def _key(k: dict[str, Any]) -> OrgKey:
    limit = k.get("limit")
    expires = k.get("expires_at")
    return OrgKey(
        hash=k["hash"],
        name=str(k.get("name") or ""),
        label=str(k.get("label") or ""),
        usage_micros=amount_micros(k.get("usage") or 0, "a key's usage"),
        limit_micros=None if limit is None else amount_micros(limit, "a key's limit"),
        limit_reset=k.get("limit_reset"),
        disabled=bool(k.get("disabled")),
        expires_at=datetime.fromisoformat(expires.replace("Z", "+00:00")) if isinstance(expires, str) else None,
    )


def _guardrail(provider, g: dict[str, Any], default_id: str | None) -> OrgGuardrail:
    models, providers, zdr = g.get("allowed_models"), g.get("allowed_providers"), bool(g.get("enforce_zdr"))
    other = list(dict.fromkeys(shown for name, shown in OTHER_RULES.items() if g.get(name) not in (None, [])))
    if any(g.get(group) is not None and bool(g.get(group)) != zdr for group in ZDR_GROUPS):
        other.append("zero data retention for some providers only")
    sets_policy = models is not None or providers is not None or zdr
    name = str(g.get("name") or "")
    # Only a guardrail Purser might adopt is worth reading its keys for; the default one holds every key.
    keys = None if g["id"] == default_id else frozenset(provider.guardrail_key_hashes(g["id"])) if sets_policy and not name.startswith("purser-") else frozenset()
    return OrgGuardrail(g["id"], name, tuple(models) if models is not None else None, tuple(providers) if providers is not None else None, zdr, keys, tuple(other))


# -- the plan, as a person reads it -------------------------------------------------------------


def describe(plan: ImportPlan) -> list[str]:
    lines = []
    for wp in plan.workspaces:
        lines.append(_heading(wp, plan))
        lines += [f"  {line}" for line in _details(wp, plan)]
    return lines


def _heading(wp: WorkspacePlan, plan: ImportPlan) -> str:
    theirs = f"OpenRouter workspace `{wp.org.slug}`"
    if wp.skipped:
        return f"{theirs}: not adopted: {wp.skipped}"
    if wp.how == "linked":
        return f"{theirs} → Purser workspace `{wp.slug}`, already linked to it"
    if wp.how == "link":
        return f"{theirs} → Purser workspace `{wp.slug}` (the same slug), linked to it"
    return f"{theirs} → a new Purser workspace `{wp.slug}` ({plan.environment.value}), linked to it"


def _details(wp: WorkspacePlan, plan: ImportPlan) -> list[str]:
    if wp.skipped:
        return []
    out = []
    if wp.cap is not None:
        out.append(f"cap: {format_money(wp.cap[0])} ({wp.cap[1].value}), from OpenRouter's workspace budget")
    if wp.keys:
        owner = plan.owner or "(the owner, named with --owner)"
        if wp.owner_joins and plan.owner:
            out.append(f"{plan.owner} becomes its first Admin, to own its keys")
        out.append(f"{len(wp.keys)} key(s) adopted, owned by {owner}; their usage so far is not counted as spend:")
        out += [f"  {_key_line(ka)}" for ka in wp.keys]
    elif wp.how == "create":
        out.append(f"it has no members yet: add its first Admin with `purser member add {wp.slug} --slack U… --role admin`")
    if wp.policy is not None:
        out.append(f"model policy from guardrail `{wp.policy_from}`: {_policy_text(wp.policy)}")
    out += wp.notes
    if not wp.changes:
        out.append("nothing to adopt")
    return out


def _key_line(ka: KeyAdoption) -> str:
    k = ka.key
    named = f"`{k.name}`" + (f" (as `{ka.name}`)" if ka.name != k.name else "")
    parts = [f"{named} {k.label}".rstrip(), f"usage {format_money(k.usage_micros)}"]
    if ka.limit_micros is not None:
        parts.append(f"limit {format_money(ka.limit_micros)} {ka.period.value} (this period's spend before the import does not count against it)")
    elif ka.dropped_limit:
        parts.append(f"its limit of {format_money(k.limit_micros)} ({k.limit_reset or 'no reset'}) is dropped: the quota lease governs it")
    if k.disabled:
        parts.append("disabled")
    return "; ".join(parts)


def _policy_text(policy: ModelPolicy) -> str:
    parts = []
    if policy.models is not None:
        parts.append("models " + ", ".join(policy.models))
    if policy.providers is not None:
        parts.append("providers " + ", ".join(policy.providers))
    if policy.zdr:
        parts.append("zero data retention")
    return "; ".join(parts)


# -- the command ----------------------------------------------------------------------------------


def run_import(database, actor, team_id: str, *, owner: str | None, environment: str, dry_run: bool, fail) -> None:
    """Read the organisation, print the plan; without ``dry_run``, carry it out in one transaction."""
    import typer

    from purser import wiring
    from store.adoption import adopt
    from store.adoption_plan import plan_import
    from store.errors import DomainError
    from workers.providers.base import ProviderError

    settings = wiring.settings()
    try:
        provider = wiring.providers(settings)("openrouter")
    except (SystemExit, ProviderError) as exc:
        fail(str(exc), 2)
    try:
        org = read_organisation(provider)
    except ProviderError as exc:
        fail(f"Could not read the organisation at OpenRouter: {exc}")
    finally:
        provider.close()
    db, inline = database()
    try:
        plan = db.run(plan_import, org, team_id=team_id, owner=owner, environment=environment)
    except DomainError as exc:
        fail(exc.message)
    typer.echo(f"OpenRouter ({settings.openrouter_api_url}): {len(org)} workspace(s).")
    for line in describe(plan):
        typer.echo(line)
    if plan.nothing:
        typer.echo("Nothing to adopt: every OpenRouter workspace is linked, and every key is known to Purser.")
        return
    if plan.problems:
        said = [p.text for p in plan.problems] + _fixes(plan)
        if not dry_run:
            fail("Nothing was imported. " + " ".join(said))
        typer.echo("Before importing: " + " ".join(said))
    if dry_run:
        typer.echo("Dry run: nothing was changed, here or at OpenRouter. Run it without --dry-run to adopt this.")
        return
    try:
        done = db.run(adopt, actor, org, team_id=team_id, owner=owner, environment=environment)
    except DomainError as exc:
        fail(exc.message)
    touched = [wp for wp in done.workspaces if wp.changes]
    keys = sum(len(wp.keys) for wp in touched)
    typer.echo(f"Imported: {len(touched)} workspace(s) adopted or updated, {keys} key(s) adopted.")
    if inline is None:
        typer.echo("The workers set each adopted key's limit at OpenRouter to its quota lease now.")
        return
    inline.drain()  # no queue shared with the workers: the leases, caps and policies are carried out here
    typer.echo("Each adopted key's limit at OpenRouter is now its quota lease.")


def _fixes(plan: ImportPlan) -> list[str]:
    kinds = {p.kind for p in plan.problems}
    out = []
    if "owner" in kinds:
        out.append("Name the member who will own them: --owner U… (a member who may hold keys in each workspace the keys go to; of a workspace the import creates, they become its first Admin).")
    for p in plan.problems:
        if p.kind == "member":
            out.append(f"Add them to `{p.workspace}` first (`purser member add {p.workspace} --slack {plan.owner} --role developer`), or name another --owner.")
        elif p.kind == "role":
            out.append(f"Give them a role with keys in `{p.workspace}` (Developer or Admin), or name another --owner.")
    return out
