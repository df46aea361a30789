"""The coding workbench: coder_accounts (who signs in, by the hash of a personal token), assignments (each
human coder's queue, with the seconds, memo and flags of each code), review_notes (a lead's memo and tags on
a run's disagreement) and adjudications (how each document of an adjudicated gold coder was decided)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coder_accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("coder_id", sa.Integer(), sa.ForeignKey("coders.id", ondelete="CASCADE"), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("role IN ('coder', 'lead')", name="ck_coder_accounts_role"),
        sa.UniqueConstraint("coder_id", name="uq_coder_accounts_coder_id"),
        sa.UniqueConstraint("token_hash", name="uq_coder_accounts_token_hash"),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("coder_id", sa.Integer(), sa.ForeignKey("coders.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "document_id", sa.Integer(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("codebook", sa.String(length=128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("overlap", sa.Boolean(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(), nullable=False),
        sa.Column("coded_at", sa.DateTime(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("unclear", sa.Boolean(), nullable=False),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("coder_id", "codebook", "document_id", name="uq_assignments_item"),
    )
    op.create_index("ix_assignments_coder_id", "assignments", ["coder_id"])
    op.create_index("ix_assignments_document_id", "assignments", ["document_id"])
    op.create_table(
        "review_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "document_id", sa.Integer(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "codebook_id", sa.Integer(), sa.ForeignKey("codebooks.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("coders.id", ondelete="CASCADE"), nullable=True),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("truth", sa.String(), nullable=True),
        sa.Column("label", sa.String(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("run_id", "document_id", name="uq_review_notes_item"),
    )
    op.create_index("ix_review_notes_document_id", "review_notes", ["document_id"])
    op.create_table(
        "adjudications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("gold_id", sa.Integer(), sa.ForeignKey("coders.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "document_id", sa.Integer(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("how", sa.String(length=12), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("by_id", sa.Integer(), sa.ForeignKey("coders.id", ondelete="CASCADE"), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("codes", sa.JSON(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("how IN ('unanimous', 'adjudicated')", name="ck_adjudications_how"),
        sa.UniqueConstraint("gold_id", "document_id", name="uq_adjudications_item"),
    )
    op.create_index("ix_adjudications_document_id", "adjudications", ["document_id"])


def downgrade() -> None:
    op.drop_index("ix_adjudications_document_id", table_name="adjudications")
    op.drop_table("adjudications")
    op.drop_index("ix_review_notes_document_id", table_name="review_notes")
    op.drop_table("review_notes")
    op.drop_index("ix_assignments_document_id", table_name="assignments")
    op.drop_index("ix_assignments_coder_id", table_name="assignments")
    op.drop_table("assignments")
    op.drop_table("coder_accounts")
