"""spike alerts and their mutes

A key's or a project's spend far above its usual for that hour of the week is announced
once to the alerts channel (store.spikes); ``spike_alerts`` keeps each announcement, so a
spike that lasts is not announced again within a day. ``spike_mutes`` holds an Admin's
mute of a key's spike alerts until a given time.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 23:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'spike_alerts',
        sa.Column('scope', sa.Enum('key', 'project', 'workspace', name='scope', native_enum=False, length=20), nullable=False),
        sa.Column('scope_id', sa.BigInteger(), nullable=False),
        sa.Column('hour', store.types.UTCDateTime(), nullable=False),
        sa.Column('workspace_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('window', sa.String(length=4), nullable=False),
        sa.Column('spent_micros', sa.BigInteger(), nullable=False),
        sa.Column('usual_micros', sa.BigInteger(), nullable=False),
        sa.Column('with_project_id', sa.BigInteger(), nullable=True),
        sa.Column('announced_at', store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_spike_alerts_workspace_id_workspaces')),
        sa.PrimaryKeyConstraint('scope', 'scope_id', 'hour', name=op.f('pk_spike_alerts')),
    )
    op.create_index('ix_spike_alerts_workspace_hour', 'spike_alerts', ['workspace_id', 'hour'], unique=False)
    op.create_table(
        'spike_mutes',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('until', store.types.UTCDateTime(), nullable=False),
        sa.Column('by_member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], name=op.f('fk_spike_mutes_key_id_api_keys')),
        sa.ForeignKeyConstraint(['by_member_id'], ['members.id'], name=op.f('fk_spike_mutes_by_member_id_members')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_spike_mutes')),
    )
    op.create_index('ix_spike_mutes_key_until', 'spike_mutes', ['key_id', 'until'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_spike_mutes_key_until', table_name='spike_mutes')
    op.drop_table('spike_mutes')
    op.drop_index('ix_spike_alerts_workspace_hour', table_name='spike_alerts')
    op.drop_table('spike_alerts')
