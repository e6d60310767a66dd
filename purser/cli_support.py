"""What every `purser` command shares: the store it runs on, the operator, refusals, workspaces by slug."""

from __future__ import annotations

import typer

from store.errors import DomainError

#: after a store refusal that names what would help (``DomainError.see``): the command that shows it here
SEE = {"list_workspaces": "`purser workspace list` shows them."}

TEAM_HELP = "Slack team id the workspace belongs to [default: SLACK_TEAM_ID, or 'local' without Slack]."


def _database():
    """A database whose committed actions reach the workers at once, and what carries them out without a queue (``workers.inline``)."""
    from purser import wiring

    settings = wiring.settings()
    wiring.configure_store(settings)
    db = wiring.database(settings, relay=False)
    return db, wiring.inline(db, settings)


def _operator():
    from store.permissions import Actor

    from purser.settings import get_settings

    return Actor.operator(f"cli:{get_settings().operator}")


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _run(op, *args, **kwargs):
    db, inline = _database()
    try:
        result = db.run(op, *args, **kwargs)
    except DomainError as exc:
        _fail(f"{exc.message} {SEE[exc.see]}" if exc.see in SEE else exc.message)
    if inline is not None:  # no queue shared with the workers: this command carries out what it committed
        inline.drain()
    return result


def _team(team: str | None) -> str:
    """The team named, else the one this install serves (SLACK_TEAM_ID), as the web process sees it."""
    if team:
        return team
    from purser.settings import get_settings

    return get_settings().slack_team_id


def _workspace_id(slug: str, team: str | None) -> int:
    from store.workspaces import find_workspace

    team = _team(team)
    return _run(lambda s: find_workspace(s, slug, team).id)
