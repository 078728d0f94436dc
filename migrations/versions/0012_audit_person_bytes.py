"""the access trail: each person's blind index stored as its 32 raw bytes, not 64 hex digits,
and on SQLite the person table without a rowid

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 13:00:00.000000
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "hub_audit_person"
INDEX = "ix_hub_audit_person_person_at"
# What the hub ever wrote: lower-case hex of a 32-byte digest. A row that is not so cannot be
# converted so that its hex (hashed into the event's persons digest) reads back the same.
NOT_HEX = {
    "postgresql": "person !~ '^[0-9a-f]{64}$'",
    "sqlite": "length(person) <> 64 OR person GLOB '*[^0-9a-f]*'",
}


def _unhex(text: str) -> bytes:
    return bytes.fromhex(text)


def _table(name: str, person: sa.types.TypeEngine[object], **options: object) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("person", person, nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("entities", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("position", "person", name=op.f("pk_hub_audit_person")),
        **options,
    )


def _rebuild_sqlite(
    person: sa.types.TypeEngine[object],
    convert: Callable[[sa.ColumnElement[object]], sa.ColumnElement[object]],
    **options: object,
) -> None:
    # SQLite cannot change a column's type, nor whether a table has a rowid: copy the rows into
    # a new table, converting the person on the way, then put the new one in the old one's place.
    bind = op.get_bind()
    old = sa.table(TABLE, *(sa.column(name) for name in ("position", "person", "at_us", "entities")))
    new = _table(f"_new_{TABLE}", person, **options)
    new.create(bind)
    copied = sa.select(old.c.position, convert(old.c.person), old.c.at_us, old.c.entities)
    bind.execute(new.insert().from_select(["position", "person", "at_us", "entities"], copied))
    op.drop_index(INDEX, table_name=TABLE)
    op.drop_table(TABLE)
    op.rename_table(new.name, TABLE)
    op.create_index(INDEX, TABLE, ["person", "at_us"])


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    person = sa.table(TABLE, sa.column("person"))
    malformed = bind.execute(sa.select(sa.func.count()).select_from(person).where(sa.text(NOT_HEX[dialect]))).scalar()
    if malformed:
        raise RuntimeError(f"the access trail holds {malformed} person rows whose blind index is not 64 hex digits")
    if dialect == "sqlite":
        # SQLite 3.40 has no unhex(): the conversion is Python's, on this connection only.
        bind.connection.dbapi_connection.create_function("hub_unhex", 1, _unhex, deterministic=True)  # type: ignore[union-attr]
        _rebuild_sqlite(sa.LargeBinary(32), sa.func.hub_unhex, sqlite_with_rowid=False)
    else:
        # In place: the primary key and the (person, time) index are rebuilt with the column.
        op.alter_column(
            TABLE,
            "person",
            type_=sa.LargeBinary(32),
            existing_type=sa.String(64),
            existing_nullable=False,
            postgresql_using="decode(person, 'hex')",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(sa.String(64), lambda person: sa.func.lower(sa.func.hex(person)))
    else:
        op.alter_column(
            TABLE,
            "person",
            type_=sa.String(64),
            existing_type=sa.LargeBinary(32),
            existing_nullable=False,
            postgresql_using="encode(person, 'hex')",
        )
