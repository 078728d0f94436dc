"""the access trail: admin actions as events (kind, action, concerns, outcome `applied`), the
leaf format of each event, and the entities of each person touched

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 23:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_OUTCOMES = "outcome IN ('served', 'partly_served', 'refused', 'failed')"
NEW_OUTCOMES = "outcome IN ('served', 'partly_served', 'refused', 'failed', 'applied')"


def upgrade() -> None:
    # SQLite cannot alter a constraint: batch mode copies the table.
    with op.batch_alter_table("hub_audit_event") as batch:
        batch.add_column(sa.Column("format", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("kind", sa.String(length=32), server_default="request", nullable=False))
        batch.add_column(sa.Column("action", sa.Text(), nullable=True))
        batch.add_column(sa.Column("concerns", sa.Text(), nullable=True))
        batch.drop_constraint(op.f("ck_hub_audit_event_outcome"), type_="check")
        batch.create_check_constraint(op.f("ck_hub_audit_event_outcome"), NEW_OUTCOMES)
    with op.batch_alter_table("hub_audit_person") as batch:
        batch.add_column(sa.Column("entities", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    # Events of format 2 cannot be told in format 1 (their leaves differ): refuse rather than
    # leave a log `verify` would report as altered.
    bind = op.get_bind()
    newer = bind.execute(sa.text("SELECT COUNT(*) FROM hub_audit_event WHERE format <> 1")).scalar()
    if newer:
        raise RuntimeError(f"the access trail holds {newer} events of leaf format 2; archive them before downgrading")
    with op.batch_alter_table("hub_audit_person") as batch:
        batch.drop_column("entities")
    with op.batch_alter_table("hub_audit_event") as batch:
        batch.drop_constraint(op.f("ck_hub_audit_event_outcome"), type_="check")
        batch.create_check_constraint(op.f("ck_hub_audit_event_outcome"), OLD_OUTCOMES)
        batch.drop_column("concerns")
        batch.drop_column("action")
        batch.drop_column("kind")
        batch.drop_column("format")
