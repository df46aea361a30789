"""run_documents: each run's asked set (the documents it selected)

Existing LLM and baseline runs get the documents they have answers for (exact for a finished run; for an
interrupted one, the documents it reached).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_documents",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "document_id", sa.Integer(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.PrimaryKeyConstraint("run_id", "document_id"),
    )
    op.create_index("ix_run_documents_document_id", "run_documents", ["document_id"])
    op.execute(
        "INSERT INTO run_documents (run_id, document_id) "
        "SELECT DISTINCT a.run_id, a.document_id FROM annotations a JOIN runs r ON r.id = a.run_id "
        "WHERE r.kind IN ('llm', 'baseline')"
    )


def downgrade() -> None:
    op.drop_index("ix_run_documents_document_id", table_name="run_documents")
    op.drop_table("run_documents")
