"""linked OpenRouter workspaces, quota leases, model policies

A workspace on the OpenRouter provider names the OpenRouter workspace it is linked to
and whether the organisation mirrors its cap as a workspace budget; a project names the
guardrail carrying its model policy; a key carries the quota lease Purser set at the
provider and when to read its usage next (docs/openrouter.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 18:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
import store.types
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_slug', sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column('provider_budgets', sa.String(length=20), nullable=True))
        # existing workspaces allow every model, as before
        batch_op.add_column(sa.Column('model_policy', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column('provider_guardrail_ref', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('leases_holder', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('leases_held_until', store.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('leases_again', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_policy', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('provider_guardrail_ref', sa.String(length=120), nullable=True))
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_ceiling_micros', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('lease_granted_micros', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('poll_after', store.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('poll_idle_seconds', sa.Integer(), nullable=False, server_default=sa.text('0')))


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        for column in ('poll_idle_seconds', 'poll_after', 'lease_granted_micros', 'lease_ceiling_micros'):
            batch_op.drop_column(column)
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('provider_guardrail_ref')
        batch_op.drop_column('model_policy')
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        for column in ('leases_again', 'leases_held_until', 'leases_holder', 'provider_guardrail_ref', 'model_policy', 'provider_budgets', 'provider_slug'):
            batch_op.drop_column(column)
