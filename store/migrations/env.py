"""Alembic environment: the store's models are the target; SQLite gets batch mode."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from store.db import make_engine
from store.models import Base
import store.models_scim  # noqa: F401  (its tables join Base.metadata: SCIM provisioning)
import store.models_spend  # noqa: F401  (spend per hour, key and model)
import store.models_statements  # noqa: F401  (the closed monthly statements)
import store.models_spikes  # noqa: F401  (and spike alerts)
import store.models_reviews  # noqa: F401  (and access reviews)
import store.models_leases  # noqa: F401  (and what was announced of keys' leases)
import store.models_policy  # noqa: F401  (and approval rules and approvals)
import store.models_raises  # noqa: F401  (temporary budget raises)

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
