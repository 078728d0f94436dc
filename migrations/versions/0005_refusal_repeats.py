"""refused policy changes: repeats past the per-minute bound

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hub_policy_change") as batch:
        batch.add_column(sa.Column("repeats", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("hub_policy_change") as batch:
        batch.drop_column("repeats")
