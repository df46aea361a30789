"""llm runs: spec hash, lease, attempts, cache logprobs; split scope

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("cached", sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table("llm_cache", schema=None) as batch_op:
        batch_op.add_column(sa.Column("logprobs", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("model", sa.String(), nullable=True))

    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frozen_codebook_sha256", sa.String(length=64), nullable=True))

    with op.batch_alter_table("splits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=8), nullable=False, server_default="all"))

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spec_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("sample", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lease_pid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lease_host", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_runs_spec_sha256", ["spec_sha256"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.drop_column("frozen_codebook_sha256")

    with op.batch_alter_table("splits", schema=None) as batch_op:
        batch_op.drop_column("scope")

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_spec_sha256")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_host")
        batch_op.drop_column("lease_pid")
        batch_op.drop_column("lease_owner")
        batch_op.drop_column("error")
        batch_op.drop_column("sample")
        batch_op.drop_column("spec_sha256")

    with op.batch_alter_table("llm_cache", schema=None) as batch_op:
        batch_op.drop_column("model")
        batch_op.drop_column("logprobs")

    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.drop_column("cached")
        batch_op.drop_column("attempts")
