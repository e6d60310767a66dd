"""monthly statements

A statement for a month closes when it is first posted; the row keeps that instant, which
decides for good which usage events are the month's and which are corrections in the
next statement, and the totals it showed (store/statements.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 23:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'statements',
        sa.Column('workspace_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('closed_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('closed_by', sa.String(length=80), nullable=False),
        sa.Column('spend_micros', sa.BigInteger(), nullable=False),
        sa.Column('spend_events', sa.BigInteger(), nullable=False),
        sa.Column('corrections_micros', sa.BigInteger(), nullable=False),
        sa.Column('correction_events', sa.BigInteger(), nullable=False),
        sa.Column('opening_micros', sa.BigInteger(), nullable=True),
        sa.Column('topups_micros', sa.BigInteger(), nullable=False),
        sa.Column('debits_micros', sa.BigInteger(), nullable=False),
        sa.Column('closing_micros', sa.BigInteger(), nullable=True),
        sa.Column('audit_events', sa.Integer(), nullable=False),
        sa.Column('limits', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_statements_workspace_id_workspaces')),
        sa.PrimaryKeyConstraint('workspace_id', 'month', name=op.f('pk_statements')),
    )


def downgrade() -> None:
    op.drop_table('statements')
