"""keys' leases: the warnings and the end announced

A key's lease is its ``api_keys.expires_at``. ``key_leases`` remembers, per leased key,
which of the warnings (a day and an hour ahead) and whether its end were announced for
the end now in force, so the clock's job every minute says each once; an extension resets
the row to the new end.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'key_leases',
        sa.Column('key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('workspace_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('ends_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('set_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('length_minutes', sa.Integer(), nullable=False),
        sa.Column('warned_day_at', store.types.UTCDateTime(), nullable=True),
        sa.Column('warned_hour_at', store.types.UTCDateTime(), nullable=True),
        sa.Column('expired_at', store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], name=op.f('fk_key_leases_key_id_api_keys')),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_key_leases_workspace_id_workspaces')),
        sa.PrimaryKeyConstraint('key_id', name=op.f('pk_key_leases')),
    )


def downgrade() -> None:
    op.drop_table('key_leases')
