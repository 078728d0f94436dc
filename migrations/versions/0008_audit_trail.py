"""the access trail: events, persons touched, Merkle subtrees, tree heads; the signing key's purpose

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 20:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PURPOSES = "purpose IN ('data', 'index', 'mask')"
NEW_PURPOSES = "purpose IN ('data', 'index', 'mask', 'signing')"


def _purposes(new: str) -> None:
    # SQLite cannot alter a constraint: batch mode copies the table (its other constraints come
    # over by reflection).
    with op.batch_alter_table("hub_key") as batch:
        batch.drop_constraint(op.f("ck_hub_key_purpose"), type_="check")
        batch.create_check_constraint(op.f("ck_hub_key_purpose"), new)


def upgrade() -> None:
    op.create_table(
        "hub_audit_event",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("principal", sa.String(length=100), nullable=False),
        sa.Column("department", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=100), nullable=True),
        sa.Column("operation_hash", sa.String(length=64), nullable=True),
        sa.Column("operation_name", sa.String(length=200), nullable=True),
        sa.Column("document_id", sa.String(length=80), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("released", sa.Text(), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("persons_digest", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('served', 'partly_served', 'refused', 'failed')", name=op.f("ck_hub_audit_event_outcome")
        ),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_hub_audit_event")),
    )
    op.create_index("ix_hub_audit_event_at_us", "hub_audit_event", ["at_us"])
    op.create_table(
        "hub_audit_person",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("position", "person", name=op.f("pk_hub_audit_person")),
    )
    op.create_index("ix_hub_audit_person_person_at", "hub_audit_person", ["person", "at_us"])
    op.create_table(
        "hub_audit_node",
        sa.Column("node", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_hub_audit_node")),
    )
    log = op.create_table(
        "hub_audit_log",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("archived", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_hub_audit_log_single")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_audit_log")),
    )
    # The one row every writer locks: made here, so no two writers race to make it.
    op.bulk_insert(log, [{"id": 1, "size": 0, "archived": 0}])
    op.create_table(
        "hub_audit_tree_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_audit_tree_head")),
    )
    op.create_index("ix_hub_audit_tree_head_size", "hub_audit_tree_head", ["size"])
    op.create_table(
        "hub_audit_anonymous",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_audit_anonymous")),
    )
    op.create_index("ix_hub_audit_anonymous_minute_address", "hub_audit_anonymous", ["minute", "address"])
    _purposes(NEW_PURPOSES)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM hub_key WHERE purpose = 'signing'"))
    _purposes(OLD_PURPOSES)
    op.drop_table("hub_audit_anonymous")
    op.drop_table("hub_audit_tree_head")
    op.drop_table("hub_audit_log")
    op.drop_table("hub_audit_node")
    op.drop_table("hub_audit_person")
    op.drop_table("hub_audit_event")
