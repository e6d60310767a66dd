"""approval policy per workspace, and approvals as rows

``approval_rules`` holds a workspace's own approval rules, tried in ``position`` order
before the defaults of its key policy; the first that matches a request says how many
approvers of which roles it needs, or approves a key at once. ``requests.approval_needs``
keeps what the matching rule asked for when the request was opened, so a policy changed
later does not move a request already waiting. ``request_approvals`` records each
approver's approval (one per member and request) with the role they held.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_ROLE = sa.Enum('admin', 'developer', 'viewer', 'billing', name='role', native_enum=False, length=20)
_KIND = sa.Enum('key', 'invite', 'budget_change', 'cap_change', 'role_change', 'credit_topup', 'model_access', name='requestkind', native_enum=False, length=20)


def upgrade() -> None:
    op.create_table(
        'approval_rules',
        sa.Column('id', _ID, nullable=False),
        sa.Column('workspace_id', _ID, nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('kind', _KIND, nullable=True),
        sa.Column('over_micros', sa.BigInteger(), nullable=True),
        sa.Column('under_micros', sa.BigInteger(), nullable=True),
        sa.Column('project', sa.String(length=40), nullable=True),
        sa.Column('requester_role', _ROLE, nullable=True),
        sa.Column('within_preset', sa.Boolean(), nullable=False),
        sa.Column('needs', sa.JSON(), nullable=False),
        sa.Column('set_by', sa.String(length=80), nullable=False),
        sa.Column('set_at', store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_approval_rules_workspace_id_workspaces')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_rules')),
        sa.UniqueConstraint('workspace_id', 'position', name=op.f('uq_approval_rules_workspace_id_position')),
    )
    op.create_table(
        'request_approvals',
        sa.Column('id', _ID, nullable=False),
        sa.Column('request_id', _ID, nullable=False),
        sa.Column('member_id', _ID, nullable=False),
        sa.Column('role', _ROLE, nullable=False),
        sa.Column('at', store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_request_approvals_request_id_requests')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_request_approvals_member_id_members')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_request_approvals')),
        sa.UniqueConstraint('request_id', 'member_id', name=op.f('uq_request_approvals_request_id_member_id')),
    )
    # a request opened before this migration has no needs of its own: one Admin, as it was then
    op.add_column('requests', sa.Column('approval_needs', sa.JSON(), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite has it since 3.35): a batch copy of `requests` would drop the
    # table that keys and actions point at, which SQLite's foreign keys refuse once rows exist.
    op.execute('ALTER TABLE requests DROP COLUMN approval_needs')
    op.drop_table('request_approvals')
    op.drop_table('approval_rules')
