"""usage events without foreign keys

Ingest reads the key row that names an event's workspace and project in the same
transaction, and keys, projects and workspaces are never removed, so the three
constraints only cost: a check and a KEY SHARE lock on the parent row for every event
inserted, more than the rest of the insert (docs/benchmarks.md, "Ingest").

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:30:00
"""
from __future__ import annotations

from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

FOREIGN_KEYS = (
    ('fk_usage_events_key_id_api_keys', 'key_id', 'api_keys'),
    ('fk_usage_events_project_id_projects', 'project_id', 'projects'),
    ('fk_usage_events_workspace_id_workspaces', 'workspace_id', 'workspaces'),
)


def upgrade() -> None:
    # batch mode: SQLite copies the table without them; PostgreSQL alters it in place
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        for name, _, _ in FOREIGN_KEYS:
            batch_op.drop_constraint(name, type_='foreignkey')


def downgrade() -> None:
    # Adding them back checks every stored event against its key, project and workspace.
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        for name, column, table in FOREIGN_KEYS:
            batch_op.create_foreign_key(name, table, [column], ['id'])
