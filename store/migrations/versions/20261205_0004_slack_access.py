"""slack access revoked

Slack tells an app when its tokens are revoked or it is uninstalled; Purser keeps that
fact (one row per team) so its processes stop calling Slack and /healthz says why.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 19:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'slack_access',
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('revoked_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('why', sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint('team_id', name=op.f('pk_slack_access')),
    )


def downgrade() -> None:
    op.drop_table('slack_access')
