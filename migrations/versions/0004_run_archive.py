"""runs.archived_at (a run hidden from listings, comparisons and the report, kept for provenance) and
document_imports (each import's file and id/text columns)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTER TABLE (SQLite >= 3.35 drops columns natively): a batch rebuild of `runs` would drop and
    # re-create the table that annotations and run_documents point at
    op.add_column("runs", sa.Column("archived_at", sa.DateTime(), nullable=True))
    op.create_table(
        "document_imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("id_column", sa.String(), nullable=False),
        sa.Column("text_column", sa.String(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("document_imports")
    op.drop_column("runs", "archived_at")
