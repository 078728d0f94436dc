"""the access trail: the persons of an event that touched many are kept in a backlog beside the
event, in its transaction, and moved into the person index off the request's path

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 16:00:00.000000
"""

from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "hub_audit_person_backlog"
PERSON_BYTES = 32


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("runs", sa.Text(), nullable=False),
        sa.Column("persons", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_hub_audit_person_backlog")),
    )


def downgrade() -> None:
    # The backlog's persons are part of the trail: moved into the person table before the
    # backlog goes, as the hub would have moved them.
    bind = op.get_bind()
    backlog = sa.table(
        TABLE,
        sa.column("position", sa.BigInteger),
        sa.column("at_us", sa.BigInteger),
        sa.column("runs", sa.Text),
        sa.column("persons", sa.LargeBinary),
    )
    person = sa.table(
        "hub_audit_person",
        sa.column("position", sa.BigInteger),
        sa.column("person", sa.LargeBinary),
        sa.column("at_us", sa.BigInteger),
        sa.column("entities", sa.Text),
    )
    for position, at_us, runs, persons in bind.execute(sa.select(backlog)).all():
        # Runs as hub/audit/backlog.py writes them: {entities, first, count}, `first` the index
        # of the run's first person in `persons`.
        rows = [
            {
                "position": position,
                "person": bytes(persons[k * PERSON_BYTES : (k + 1) * PERSON_BYTES]),
                "at_us": at_us,
                "entities": run["entities"],
            }
            for run in orjson.loads(runs)
            for k in range(run["first"], run["first"] + run["count"])
        ]
        if rows:
            bind.execute(person.insert(), rows)
    op.drop_table(TABLE)
