"""recorded lineage links: append-only, hash-chained

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hub_lineage_link",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("from_entity", sa.String(length=200), nullable=False),
        sa.Column("from_key", sa.String(length=200), nullable=False),
        sa.Column("to_entity", sa.String(length=200), nullable=False),
        sa.Column("to_key", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("department", sa.String(length=100), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("retracts", sa.Integer(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_lineage_link")),
        sa.UniqueConstraint("recorded_by", "idempotency_key", name=op.f("uq_hub_lineage_link_recorded_by")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_hub_lineage_link_prev_hash")),
    )
    op.create_index(op.f("ix_hub_lineage_link_from_entity"), "hub_lineage_link", ["from_entity"])
    op.create_index(op.f("ix_hub_lineage_link_to_entity"), "hub_lineage_link", ["to_entity"])
    op.create_index(op.f("ix_hub_lineage_link_retracts"), "hub_lineage_link", ["retracts"])


def downgrade() -> None:
    op.drop_index(op.f("ix_hub_lineage_link_retracts"), table_name="hub_lineage_link")
    op.drop_index(op.f("ix_hub_lineage_link_to_entity"), table_name="hub_lineage_link")
    op.drop_index(op.f("ix_hub_lineage_link_from_entity"), table_name="hub_lineage_link")
    op.drop_table("hub_lineage_link")
