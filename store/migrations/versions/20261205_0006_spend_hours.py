"""spend per hour, key and model

Breakdowns by project, member, key and model, the charts, the statements' splits and the
spike checks read these rows, which ingest moves with the events, instead of scanning
usage_events. The rows are filled from the events already recorded.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 21:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'spend_hours',
        sa.Column('workspace_id', sa.BigInteger(), nullable=False),
        sa.Column('hour', store.types.UTCDateTime(), nullable=False),
        sa.Column('key_id', sa.BigInteger(), nullable=False),
        sa.Column('model', sa.String(length=120), nullable=False),
        sa.Column('project_id', sa.BigInteger(), nullable=True),
        sa.Column('amount_micros', sa.BigInteger(), nullable=False),
        sa.Column('events', sa.BigInteger(), nullable=False),
        sa.Column('prompt_tokens', sa.BigInteger(), nullable=False),
        sa.Column('completion_tokens', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('workspace_id', 'hour', 'key_id', 'model', name=op.f('pk_spend_hours')),
    )
    op.create_index('ix_spend_hours_key_hour', 'spend_hours', ['key_id', 'hour'], unique=False)
    # Timestamps are stored naive in UTC on both databases.
    hour = "date_trunc('hour', occurred_at)" if op.get_bind().dialect.name == "postgresql" else "strftime('%Y-%m-%d %H:00:00.000000', occurred_at)"
    op.execute(
        "INSERT INTO spend_hours (workspace_id, hour, key_id, model, project_id, amount_micros, events, prompt_tokens, completion_tokens) "
        f"SELECT workspace_id, {hour}, key_id, coalesce(model, ''), max(project_id), sum(amount_micros), count(*), "
        "coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0) "
        f"FROM usage_events GROUP BY workspace_id, {hour}, key_id, coalesce(model, '')"
    )


def downgrade() -> None:
    op.drop_index('ix_spend_hours_key_hour', table_name='spend_hours')
    op.drop_table('spend_hours')
