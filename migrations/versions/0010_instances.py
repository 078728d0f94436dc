"""several instances on one hub database: the change serial with its triggers and
notifications (PostgreSQL), the published catalog hash

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-06 23:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept here rather than imported: a migration must not change when the code moves on. The
# channel is hub/instances/models.py's CHANNEL.
WATCHED = ("hub_policy_snapshot", "hub_app", "hub_app_token", "hub_key", "hub_document")

FUNCTION = """
CREATE FUNCTION hub_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE hub_change SET serial = serial + 1 WHERE id = 1;
    PERFORM pg_notify('hub_changes', TG_TABLE_NAME);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    change = op.create_table(
        "hub_change",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_change")),
    )
    op.bulk_insert(change, [{"id": 1, "serial": 0}])
    op.create_table(
        "hub_catalog",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=71), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_catalog")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite serves one instance: nothing to notify
    op.execute(FUNCTION)
    for table in WATCHED:
        # Per statement: a change of many rows is one notification and one step of the serial.
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION hub_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER {table}_changed ON {table}")
        op.execute("DROP FUNCTION hub_changed()")
    op.drop_table("hub_catalog")
    op.drop_table("hub_change")
