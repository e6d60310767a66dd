"""keys' leases: the warnings and the end announced

A key's lease is its ``api_keys.expires_at``. ``key_leases`` remembers, per leased key,
which of the warnings (a day and an hour ahead) and whether its end were announced for
the end now in force, so the clock's job every minute says each once; an extension resets
the row to the new end.

Keys whose end had passed before this release were already refused by /v1/authz; they
get a row marked as announced, so the first run of the clock's job does not tell their
owners, perhaps months late, of ends nobody was waiting to hear about.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:00:00
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

import store.types


revision = '0011'
down_revision = '0010'
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
    _mark_ended_keys_announced()


def _mark_ended_keys_announced() -> None:
    bind = op.get_bind()
    now = datetime.now(timezone.utc)
    when = store.types.UTCDateTime
    keys = sa.table('api_keys', sa.column('id'), sa.column('workspace_id'), sa.column('status'), sa.column('expires_at', when()), sa.column('created_at', when()))
    ended = bind.execute(sa.select(keys.c.id, keys.c.workspace_id, keys.c.expires_at, keys.c.created_at).where(keys.c.status == 'active', keys.c.expires_at.is_not(None), keys.c.expires_at <= now)).all()
    leases = sa.table(
        'key_leases', sa.column('key_id'), sa.column('workspace_id'), sa.column('ends_at', when()), sa.column('set_at', when()), sa.column('length_minutes'),
        sa.column('warned_day_at', when()), sa.column('warned_hour_at', when()), sa.column('expired_at', when()),
    )
    rows = [
        {
            'key_id': key_id, 'workspace_id': ws_id, 'ends_at': end, 'set_at': made, 'length_minutes': max(1, round((end - made).total_seconds() / 60)),
            'warned_day_at': now, 'warned_hour_at': now, 'expired_at': now,
        }
        for key_id, ws_id, end, made in ended
    ]
    if rows:
        bind.execute(leases.insert(), rows)


def downgrade() -> None:
    op.drop_table('key_leases')
