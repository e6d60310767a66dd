"""usage events keyed by what makes them unique; no index nothing reads

``usage_events`` is keyed by (workspace, external id), the idempotency key ingest
inserts on, instead of a surrogate id nothing reads: one index and a sequence fewer for
every event. ``ix_usage_events_key_at`` (key, time) goes: usage reports, charts and
spike checks read ``spend_hours``, and the monthly statement scans one workspace's month
of events, so no query looks events up by key any more. ``ix_spend_hours_key_hour``
(key, hour) goes: every read of ``spend_hours`` names the workspace and a range of
hours, which its primary key serves. Ingest moved all three with every event
(docs/benchmarks.md, "Ingest").

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 23:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_spend_hours_key_hour', table_name='spend_hours')
    # batch mode: SQLite copies the table into its new shape; PostgreSQL alters it in place
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_events_key_at')
        batch_op.drop_constraint('uq_usage_events_workspace_id_external_id', type_='unique')
        if op.get_bind().dialect.name == "postgresql":  # SQLite's copy takes its key from create_primary_key alone
            batch_op.drop_constraint('pk_usage_events', type_='primary')
        batch_op.drop_column('id')
        batch_op.create_primary_key('pk_usage_events', ['workspace_id', 'external_id'])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.batch_alter_table('usage_events', schema=None) as batch_op:
            batch_op.drop_constraint('pk_usage_events', type_='primary')
            batch_op.add_column(sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False))  # numbered afresh
            batch_op.create_primary_key('pk_usage_events', ['id'])
            batch_op.create_unique_constraint('uq_usage_events_workspace_id_external_id', ['workspace_id', 'external_id'])
    else:
        # SQLite's batch copy will not move a primary key to a new column: the table is
        # copied by hand, each row numbered by the row id SQLite gives it.
        big = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
        op.create_table(
            '_usage_events_0008',
            sa.Column('id', big, nullable=False),
            sa.Column('external_id', sa.String(length=200), nullable=False),
            sa.Column('workspace_id', big, nullable=False),
            sa.Column('project_id', big, nullable=True),
            sa.Column('key_id', big, nullable=False),
            sa.Column('amount_micros', sa.BigInteger(), nullable=False),
            sa.Column('model', sa.String(length=120), nullable=True),
            sa.Column('prompt_tokens', sa.Integer(), nullable=True),
            sa.Column('completion_tokens', sa.Integer(), nullable=True),
            sa.Column('occurred_at', store.types.UTCDateTime(), nullable=False),
            sa.Column('ingested_at', store.types.UTCDateTime(), nullable=False),
            sa.PrimaryKeyConstraint('id', name='pk_usage_events'),
            sa.UniqueConstraint('workspace_id', 'external_id', name='uq_usage_events_workspace_id_external_id'),
        )
        columns = "external_id, workspace_id, project_id, key_id, amount_micros, model, prompt_tokens, completion_tokens, occurred_at, ingested_at"
        op.execute(f"INSERT INTO _usage_events_0008 ({columns}) SELECT {columns} FROM usage_events ORDER BY ingested_at")
        op.drop_table('usage_events')
        op.rename_table('_usage_events_0008', 'usage_events')
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.create_index('ix_usage_events_key_at', ['key_id', 'occurred_at'], unique=False)
    op.create_index('ix_spend_hours_key_hour', 'spend_hours', ['key_id', 'hour'], unique=False)
