"""`purser scim`: SCIM provisioning's tokens, for the operator (an Admin uses `/ai-workspace scim token`)."""

from __future__ import annotations

from typing import Optional

import typer

from purser.cli_support import TEAM_HELP, _operator, _run, _workspace_id

scim_app = typer.Typer(help="SCIM provisioning from an identity provider (docs/scim.md).", no_args_is_help=True)


@scim_app.command("token")
def scim_token(
    workspace: str = typer.Argument(..., help="The workspace (slug) whose people the identity provider provisions."),
    name: Optional[str] = typer.Option(None, help="What to call the token (e.g. okta, entra); default: token-<date>."),
    team: Optional[str] = typer.Option(None, help=TEAM_HELP, show_default=False),
) -> None:
    """Make a SCIM bearer token for a workspace; it is printed once (Purser keeps its hash). A third live token retires the oldest."""
    from store import scim

    made = _run(scim.create_token, _operator(), _workspace_id(workspace, team), name)
    typer.echo(f"SCIM token {made.name} for {workspace} (shown once; Purser keeps only its hash):")
    typer.echo(made.secret)
    typer.echo("SCIM base URL: Purser's public address followed by /scim/v2. Set both in the identity provider (docs/scim.md).")
    if made.retired:
        typer.echo(f"Retired the oldest live token(s): {', '.join(made.retired)} (two live at most).")


@scim_app.command("revoke")
def scim_revoke(
    workspace: str = typer.Argument(..., help="The workspace (slug)."),
    name: str = typer.Argument(..., help="The token's name."),
    team: Optional[str] = typer.Option(None, help=TEAM_HELP, show_default=False),
) -> None:
    """Revoke a SCIM token: the identity provider using it is refused from then on."""
    from store import scim

    _run(scim.revoke_token, _operator(), _workspace_id(workspace, team), name)
    typer.echo(f"Revoked SCIM token {name} of {workspace}.")
