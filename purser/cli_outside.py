"""`purser` commands about the world outside Purser: keys seen elsewhere, an OpenRouter organisation, Slack's directory."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from purser.cli_support import TEAM_HELP, _database, _fail, _operator, _run, _team

leak_app = typer.Typer(help="Keys seen where they should not be.", no_args_is_help=True)
openrouter_app = typer.Typer(help="An OpenRouter organisation (OPENROUTER_MANAGEMENT_KEY).", no_args_is_help=True)
directory_app = typer.Typer(help="Slack's directory: who still works here.", no_args_is_help=True)


@leak_app.command("report")
def leak_report(
    source: Optional[str] = typer.Option(None, "--source", help="Where they were seen (a URL), for the audit log and the owner's message."),
) -> None:
    """Read candidates from standard input, one per line (never as arguments: a shell keeps those); revoke the Purser keys among them."""
    from store import leak_scan, leaks

    hashes: list[str] = []
    vendors: set[str] = set()
    for line in sys.stdin:
        found = leak_scan.scan(line.rstrip("\n"))
        hashes += found.secret_hashes
        vendors.update(found.vendors)
    if not hashes and not vendors:
        typer.echo("Nothing that looks like a key was found.")
        return
    outcome = _run(leaks.report_leak, hashes, leaks.Source(url=source, reporter="cli")) if hashes else leaks.Outcome()
    typer.echo(f"Revoked {len(outcome.revoked)} key(s); {len(outcome.again)} already revoked; {outcome.unknown} not Purser's.")
    if vendors:
        typer.echo(f"Also found what looks like {', '.join(sorted(vendors))}: not Purser's to revoke; rotate them with their vendors.")


@openrouter_app.command("import")
def openrouter_import(
    owner: Optional[str] = typer.Option(None, "--owner", help="Slack user id of the member who will own the adopted keys (a workspace the import creates makes them its first Admin)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be adopted and change nothing."),
    environment: str = typer.Option("development", "--env", "-e", help="The environment of the workspaces the import creates."),
    team: Optional[str] = typer.Option(None, help=TEAM_HELP, show_default=False),
) -> None:
    """Adopt the OpenRouter organisation's workspaces, budgets, keys and guardrails (try --dry-run first)."""
    from purser.adoption import run_import

    run_import(_database, _operator(), _team(team), owner=owner, environment=environment, dry_run=dry_run, fail=_fail)


@directory_app.command("sync")
def directory_sync(team: Optional[str] = typer.Option(None, help=TEAM_HELP, show_default=False)) -> None:
    """Read Slack's whole directory now and suspend whoever it says is deactivated (the clock does it daily)."""
    from purser import wiring
    from workers.directory import sync

    db, inline = _database()
    client = wiring.slack(db, wiring.settings())
    if client is None:
        _fail("SLACK_BOT_TOKEN is not set: the directory is Slack's, so Purser needs its bot token to read it.", 2)
    suspended, complete = sync(db, client.client, _team(team))
    if inline is not None:
        inline.drain()
    if not complete:
        _fail("Slack's directory could not be read to the end, so nothing was changed: a partial listing proves nothing. Try again later.")
    typer.echo(f"Suspended {len(suspended)} member(s) whose deactivation no event had told: {', '.join(suspended)}" if suspended else "Everyone Purser has is still active in Slack.")
