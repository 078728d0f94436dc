"""idempotency keys of policy changes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hub_policy_change") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("request_digest", sa.String(length=64), nullable=True))
        batch.create_index("uq_hub_policy_change_actor_key", ["actor", "idempotency_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("hub_policy_change") as batch:
        batch.drop_index("uq_hub_policy_change_actor_key")
        batch.drop_column("request_digest")
        batch.drop_column("idempotency_key")
