"""`make run`: prepare the store and start what Purser has to run."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import typer

from purser.settings import get_settings


def ensure_secret_key() -> str:
    """Use PURSER_SECRET_KEY, or keep a generated one in var/secret.key for the embedded setup."""
    from store.secrets import Cipher

    if get_settings().purser_secret_key:
        return "PURSER_SECRET_KEY"
    path = Path(os.environ.get("PURSER_SECRET_KEY_FILE", "var/secret.key"))
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Cipher.generate() + "\n")
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return str(path)


def main() -> None:
    from sqlalchemy.engine import make_url

    from store.db import Database
    from store.migrate import upgrade
    from store.workspaces import list_workspaces

    settings = get_settings()
    url = settings.database_url
    upgrade(url)
    key_source = ensure_secret_key()
    db = Database(url)
    with db.session() as s:
        workspaces = list_workspaces(s)
    typer.echo(f"Purser store ready: {make_url(url).render_as_string(hide_password=True)} (migrated to head)")
    typer.echo(f"Key secrets encrypted with the key from {key_source}")
    if workspaces:
        typer.echo("Workspaces: " + ", ".join(f"{w.slug} ({w.environment.value})" for w in workspaces))
    else:
        typer.echo("No workspaces yet:  .venv/bin/purser workspace create demo --env development")
        typer.echo("Then an admin:      .venv/bin/purser member add demo --slack U0123ABCD --role admin")
    db.dispose()
