"""temporary budget raises

``budget_raises`` holds each raise an Admin approved (a ``budget_raise`` request): an
amount added to a project's budget from ``starts_at`` until ``ends_at``, and when the
clock announced its end (``ended_at``). A project's limit is its budget plus the raises in
force; nothing on ``projects`` changes when a raise starts or ends.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'budget_raises',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('workspace_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('amount_micros', sa.BigInteger(), nullable=False),
        sa.Column('starts_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('ends_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('granted_by', sa.String(length=120), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.Column('ended_at', store.types.UTCDateTime(), nullable=True),
        sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_budget_raises_workspace_id_workspaces')),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_budget_raises_project_id_projects')),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_budget_raises_request_id_requests')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_raises')),
    )
    op.create_index('ix_budget_raises_project_ends', 'budget_raises', ['project_id', 'ends_at'], unique=False)
    op.create_index('ix_budget_raises_unannounced', 'budget_raises', ['ended_at', 'ends_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_budget_raises_unannounced', table_name='budget_raises')
    op.drop_index('ix_budget_raises_project_ends', table_name='budget_raises')
    op.drop_table('budget_raises')
