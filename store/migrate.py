"""Schema changes only through Alembic migrations; this wires Alembic to the store."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    from store.db import normalise_url

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # '%' would be read as interpolation by configparser
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def check(url: str) -> None:
    """Raise if the models and the migrated schema differ."""
    command.check(alembic_config(url))
