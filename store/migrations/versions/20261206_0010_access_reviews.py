"""access reviews and their items

A workspace's Admins review who holds access and which keys live (store.reviews): one
``access_reviews`` row per review (the clock's quarterly one unique per workspace and
quarter), one ``review_items`` row per member and per live key, with its last use, its
spend and the decision taken on it.

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

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'access_reviews',
        sa.Column('id', ID, nullable=False),
        sa.Column('workspace_id', ID, nullable=False),
        sa.Column('quarter', sa.String(length=7), nullable=True),
        sa.Column('since', store.types.UTCDateTime(), nullable=False),
        sa.Column('until', store.types.UTCDateTime(), nullable=False),
        sa.Column('opened_by', sa.String(length=80), nullable=False),
        sa.Column('opened_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('reminded_on', sa.String(length=10), nullable=True),
        sa.Column('closed_at', store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_access_reviews_workspace_id_workspaces')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_access_reviews')),
        sa.UniqueConstraint('workspace_id', 'quarter', name=op.f('uq_access_reviews_workspace_id_quarter')),
    )
    op.create_index('ix_access_reviews_open', 'access_reviews', ['closed_at', 'workspace_id'], unique=False)
    op.create_table(
        'review_items',
        sa.Column('id', ID, nullable=False),
        sa.Column('review_id', ID, nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('member_id', ID, nullable=False),
        sa.Column('key_id', ID, nullable=True),
        sa.Column('last_used_at', store.types.UTCDateTime(), nullable=True),
        sa.Column('spend_micros', sa.BigInteger(), nullable=False),
        sa.Column('decision', sa.String(length=10), nullable=True),
        sa.Column('decided_by', sa.String(length=80), nullable=True),
        sa.Column('decided_at', store.types.UTCDateTime(), nullable=True),
        sa.Column('transfer_to_id', ID, nullable=True),
        sa.ForeignKeyConstraint(['review_id'], ['access_reviews.id'], name=op.f('fk_review_items_review_id_access_reviews')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_review_items_member_id_members')),
        sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], name=op.f('fk_review_items_key_id_api_keys')),
        sa.ForeignKeyConstraint(['transfer_to_id'], ['members.id'], name=op.f('fk_review_items_transfer_to_id_members')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_review_items')),
    )
    op.create_index('ix_review_items_review', 'review_items', ['review_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_review_items_review', table_name='review_items')
    op.drop_table('review_items')
    op.drop_index('ix_access_reviews_open', table_name='access_reviews')
    op.drop_table('access_reviews')
