"""`purser`: the operator's command line. The same store operations Slack uses."""

from __future__ import annotations

import os
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from store.errors import DomainError

app = typer.Typer(help="Purser: Slack chat-ops for a team's access to LLM APIs.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="The store's schema.", no_args_is_help=True)
workspace_app = typer.Typer(help="Workspaces.", no_args_is_help=True)
member_app = typer.Typer(help="Members.", no_args_is_help=True)
usage_app = typer.Typer(help="Usage (spend) events.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
reveals_app = typer.Typer(help="Key secrets waiting for their one reveal.", no_args_is_help=True)
for sub, name in ((db_app, "db"), (workspace_app, "workspace"), (member_app, "member"), (usage_app, "usage"), (audit_app, "audit"), (reveals_app, "reveals")):
    app.add_typer(sub, name=name)

from purser.cli_support import SEE, TEAM_HELP, _database, _fail, _operator, _run, _team, _workspace_id  # noqa: E402,F401
from purser.cli_outside import directory_app, leak_app, openrouter_app  # noqa: E402
from purser.cli_scim import scim_app  # noqa: E402
from purser.cli_statement import statement  # noqa: E402

for sub, name in ((leak_app, "leak"), (openrouter_app, "openrouter"), (directory_app, "directory"), (scim_app, "scim")):
    app.add_typer(sub, name=name)
app.command("statement")(statement)

@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Revision to upgrade to.")) -> None:
    """Apply the store's migrations (the `release` step)."""
    from purser.settings import get_settings
    from store.migrate import upgrade

    url = get_settings().database_url
    upgrade(url, revision)
    typer.echo(f"Store is at {revision} ({_safe_url(url)}).")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@workspace_app.command("create")
def workspace_create(
    slug: str = typer.Argument(..., help="Short name: lowercase letters, digits and dashes."),
    name: Optional[str] = typer.Option(None, help="Display name (defaults to the slug)."),
    environment: str = typer.Option("development", "--env", "-e", help="production, staging or development."),
    team: Optional[str] = typer.Option(None, help=TEAM_HELP, show_default=False),
    policy: Optional[str] = typer.Option(None, help="Key policy: approval or auto (default: auto in development, approval elsewhere)."),
    provider: str = typer.Option("local", help="Where keys are made: local (Purser mints them) or openrouter."),
    openrouter_workspace: Optional[str] = typer.Option(None, help="With --provider openrouter: the OpenRouter workspace's slug to adopt or create (default: the workspace's slug)."),
) -> None:
    """Create a workspace."""
    from store.links import link_workspace
    from store.workspaces import create_workspace

    if openrouter_workspace and provider != "openrouter":
        _fail("--openrouter-workspace goes with --provider openrouter.", 2)

    def create(s):
        # One transaction: a workspace on OpenRouter is never left unlinked.
        ws = create_workspace(s, _operator(), slug=slug, name=name, environment=environment, team_id=_team(team), key_policy=policy, provider="local" if provider == "openrouter" else provider)
        return link_workspace(s, _operator(), ws.id, openrouter_workspace) if provider == "openrouter" else ws

    ws = _run(create)
    typer.echo(f"Created workspace {ws.slug} ({ws.environment.value}, key policy {ws.key_policy.value}) in team {ws.team_id}.")
    if ws.provider == "openrouter":
        typer.echo(f"Linked to OpenRouter workspace {ws.provider_slug}: adopted if it exists, else created.")
    typer.echo(f"Next: purser member add {ws.slug} --slack U… --role admin")


@workspace_app.command("link")
def workspace_link(
    slug: str = typer.Argument(..., help="The Purser workspace."),
    openrouter_workspace: Optional[str] = typer.Option(None, help="The OpenRouter workspace's slug to adopt or create (default: the workspace's slug)."),
    team: Optional[str] = typer.Option(None, help=TEAM_HELP, show_default=False),
) -> None:
    """Put a workspace on OpenRouter, linked to an OpenRouter workspace: new keys are made there."""
    from store.links import link_workspace

    ws = _run(link_workspace, _operator(), _workspace_id(slug, team), openrouter_workspace)
    typer.echo(f"Linked {ws.slug} to OpenRouter workspace {ws.provider_slug}: adopted if it exists, else created. New keys are made there.")


@workspace_app.command("delete")
def workspace_delete(
    slug: str = typer.Argument(..., help="The workspace to delete."),
    confirm: Optional[str] = typer.Option(None, "--confirm", help="The workspace's name again, to delete without being asked."),
    team: Optional[str] = typer.Option(None, help=TEAM_HELP, show_default=False),
) -> None:
    """Delete a workspace: its live keys are revoked, waiting requests and invitations withdrawn; its history is kept."""
    from store.workspace_deletion import delete_workspace, preview_deletion

    ws_id = _workspace_id(slug, team)
    if confirm is None:
        typer.echo(_run(preview_deletion, _operator(), ws_id).describe().replace("`", ""))
        confirm = typer.prompt("Type the workspace's name to delete it")
    done = _run(delete_workspace, _operator(), ws_id, confirm=confirm)
    typer.echo(f"Deleted {slug}: {done.revoked_keys} key(s) revoked, {done.cancelled_requests} request(s) and {done.cancelled_invitations} invitation(s) withdrawn.")


@workspace_app.command("list")
def workspace_list(team: Optional[str] = typer.Option(None, help="Only this Slack team's workspaces.")) -> None:
    """List workspaces."""
    from store.workspaces import list_workspaces

    rows = _run(lambda s: [(w.slug, w.team_id, w.environment.value, w.status.value, w.key_policy.value) for w in list_workspaces(s, team_id=team)])
    if not rows:
        typer.echo("No workspaces yet. Create one with: purser workspace create <slug> --env production")
        return
    typer.echo(f"{'workspace':<24}{'team':<14}{'environment':<14}{'status':<10}policy")
    for slug, team_id, env, status, policy in rows:
        typer.echo(f"{slug:<24}{team_id:<14}{env:<14}{status:<10}{policy}")


@member_app.command("add")
def member_add(
    workspace: str = typer.Argument(..., help="Workspace slug."),
    slack: Optional[str] = typer.Option(None, "--slack", help="Slack user id, like U0123ABCD."),
    email: Optional[str] = typer.Option(None, "--email", help="E-mail address."),
    role: str = typer.Option("developer", "--role", "-r", help="admin, developer, viewer or billing."),
    team: Optional[str] = typer.Option(None, help=TEAM_HELP, show_default=False),
) -> None:
    """Add a member at once — how a new workspace gets its first admin."""
    from store.members import add_member

    if not slack and not email:
        _fail("give --slack U… or --email someone@example.com (or both).", 2)
    ws_id = _workspace_id(workspace, team)
    member = _run(add_member, _operator(), ws_id, role=role, slack_user_id=slack, email=email, why="added by the operator")
    typer.echo(f"{member.label} is now {'an' if member.role.title[0] in 'AEIOU' else 'a'} {member.role.title} of {workspace}.")


@usage_app.command("record")
def usage_record(
    workspace: str = typer.Argument(..., help="Workspace slug."),
    key: str = typer.Option(..., "--key", "-k", help="The key's name, prefix or number."),
    amount: str = typer.Option(..., "--amount", "-a", help="What it cost, like $0.42."),
    model: Optional[str] = typer.Option(None, help="Model name, for the report."),
    external_id: Optional[str] = typer.Option(None, "--external-id", help="Idempotency id (default: a new one)."),
    at: Optional[datetime] = typer.Option(None, help="When it happened, UTC (default: now)."),
    team: Optional[str] = typer.Option(None, help=TEAM_HELP, show_default=False),
) -> None:
    """Record spend against a key (for the local provider and for demos)."""
    from store.keys import find_key
    from store.money import format_money, parse_money
    from store.types import utcnow
    from store.ingest import UsageIn, ingest_usage

    try:
        micros = parse_money(amount)
    except DomainError as exc:
        _fail(exc.message, 2)
    ws_id = _workspace_id(workspace, team)
    key_id = _run(lambda s: find_key(s, _operator(), ws_id, key).id)
    when = (at.replace(tzinfo=timezone.utc) if at and at.tzinfo is None else at) or utcnow()
    event = UsageIn(external_id=external_id or f"cli-{uuid.uuid4().hex}", key_id=key_id, amount_micros=micros, occurred_at=when, model=model)
    result = _run(ingest_usage, [event])
    if result.refused:
        _fail(f"refused: {next(iter(result.refused.values()))}")
    if result.duplicates:
        typer.echo(f"Already recorded: {event.external_id} (nothing added).")
        return
    typer.echo(f"Recorded {format_money(micros)} on key {key}.")
    for crossing in result.crossings:
        typer.echo(f"  threshold: {crossing.describe()}")
    for paused in result.paused:
        typer.echo(f"  paused: {paused}")


@audit_app.command("verify")
def audit_verify(
    workspace: Optional[str] = typer.Argument(None, help="Workspace slug (default: every workspace)."),
    team: Optional[str] = typer.Option(None, help=TEAM_HELP, show_default=False),
) -> None:
    """Check the hash chain; exit 1 naming the first event that does not match."""
    from store.audit import verify_chain
    from store.models import Workspace
    from sqlalchemy import select

    def check(s):
        stmt = select(Workspace.id, Workspace.slug).order_by(Workspace.id)
        if workspace:
            stmt = stmt.where(Workspace.slug == workspace, Workspace.team_id == _team(team))
        found = s.execute(stmt).all()
        if not found:
            raise DomainError(f"no workspace called {workspace}." if workspace else "there are no workspaces yet.")
        return [(slug, verify_chain(s, ws_id)) for ws_id, slug in found]

    broken = 0
    for slug, result in _run(check):
        typer.echo(f"{slug}: {result.summary}")
        broken += not result.ok
    if broken:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    workspace: str = typer.Argument(..., help="Workspace slug."),
    fmt: str = typer.Option("jsonl", "--format", "-f", help="csv or jsonl."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: standard output)."),
    team: Optional[str] = typer.Option(None, help=TEAM_HELP, show_default=False),
) -> None:
    """Export a workspace's audit log, hashes included."""
    from store.audit import export

    if fmt not in ("csv", "jsonl"):
        _fail(f"--format must be csv or jsonl, not {fmt}.", 2)
    ws_id = _workspace_id(workspace, team)
    if output is None:
        _run(export, _operator(), ws_id, sys.stdout, fmt)
        return
    with output.open("w", encoding="utf-8", newline="") as fh:
        lines = _run(export, _operator(), ws_id, fh, fmt)
    typer.echo(f"Wrote {lines} line(s) to {output}.", err=True)


@reveals_app.command("reencrypt")
def reveals_reencrypt() -> None:
    """After putting a new key first in PURSER_SECRET_KEY: re-encrypt the waiting secrets under it."""
    from store.keys import reencrypt_reveals

    count = _run(reencrypt_reveals)
    typer.echo(f"Re-encrypted {count} waiting secret(s) under the first key of PURSER_SECRET_KEY.")
    typer.echo("Once every process runs with that key first, the old key can be removed from the list.")


@app.command("secret-key")
def secret_key() -> None:
    """Print a new PURSER_SECRET_KEY (a Fernet key)."""
    from store.secrets import Cipher

    typer.echo(Cipher.generate())


@app.command("web")
def web(
    port: int = typer.Option(None, help="Port to listen on (default: $PORT or 3000)."),
    host: str = typer.Option("0.0.0.0", help="Address to listen on (127.0.0.1 behind a proxy on the same machine)."),
    workers: int = typer.Option(2, help="gunicorn worker processes."),
    threads: int = typer.Option(8, help="Threads per worker."),
) -> None:
    """Run the Slack app: Socket Mode when SLACK_APP_TOKEN is set, else HTTP under gunicorn (the `web` process)."""
    from purser import wiring

    settings = wiring.settings()
    if not settings.redis_url:
        # Alone, the web process would take requests and approvals whose work nobody carries out.
        _fail("REDIS_URL is not set: `purser web` hands work to `purser worker` through Redis. Set REDIS_URL, or run everything in one process with `purser run`.", 2)
    wiring.configure_store(settings)
    try:  # said once here, not by every gunicorn worker that gunicorn would start again and again
        wiring.check_secret_key()
    except SystemExit as exc:
        _fail(str(exc), 2)
    if settings.slack_app_token:
        wiring.socket_mode()
        return
    from purser.web_server import command

    os.execvp(sys.executable, command(workers, threads, f"{host}:{port or settings.port}"))


@app.command("worker")
def worker(
    processes: int = typer.Option(2, help="Worker processes."),
    threads: int = typer.Option(8, help="Threads per process."),
    poll_ms: int = typer.Option(100, min=5, help="Longest wait, in ms, between two fetches from an empty queue (dramatiq's worker_timeout)."),
) -> None:
    """Run the dramatiq workers (needs REDIS_URL): the `worker` process."""
    from purser.settings import child_environment, get_settings

    if not get_settings().redis_url:
        _fail("REDIS_URL is not set: separate worker processes need Redis. `purser run` runs workers in-process instead.", 2)
    # The dramatiq CLI has no flag for worker_timeout; it reads this variable when dramatiq
    # is imported. Its default of 1,000 ms lets an action on a quiet queue wait up to a
    # second for its actor (docs/benchmarks.md, "Pipeline"); 100 ms costs a few % of a core.
    env = child_environment(dramatiq_worker_timeout=str(poll_ms))
    os.execvpe(sys.executable, [sys.executable, "-m", "dramatiq", "purser.worker_process", "--processes", str(processes), "--threads", str(threads)], env)


@app.command("clock")
def clock() -> None:
    """Run the scheduler (the `clock` process); replicas elect one leader."""
    from purser.wiring import run_clock

    run_clock()


@app.command("run")
def run() -> None:
    """Run Purser with what is configured (embedded defaults: a SQLite file under ./var)."""
    from purser.runner import main as run_main

    run_main()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
