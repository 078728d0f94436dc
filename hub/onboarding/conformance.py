"""Whether a department's manifest matches its live database: every table and column exists,
each column's type can hold its field, the key is declared primary or unique, and an encrypted
field's blind-index column is there beside it.

A mismatch is one line naming the manifest file, the entity, the field and what the database
has instead, so that a typo in a manifest stops `hub manifest check` (and takes its department
out of service) instead of surfacing later as INTERNAL errors on queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.catalog.manifest import FieldType, Storage
from hub.catalog.model import Catalog, EntityInfo, FieldInfo
from hub.onboarding.reflect import Table, reflect_present


@dataclass(frozen=True)
class Mismatch:
    source: str  # the manifest file
    department: str
    entity: str
    field: str | None
    found: str  # what the database has instead
    # The columns the table has, where one is missing: for the operator's command, not for
    # /readyz, which anyone may read.
    held: str = ""

    def __str__(self) -> str:
        return self.public() + (f" (it has: {self.held})" if self.held else "")

    def public(self) -> str:
        where = f"entity {self.entity}" + (f", field {self.field}" if self.field else "")
        return f"{self.source}: {where}: {self.found}"


async def check_department(catalog: Catalog, department: str, engine: AsyncEngine) -> list[Mismatch]:
    """Every mismatch between `department`'s entities and the database behind `engine`."""
    info = catalog.departments[department]
    entities = [catalog.entity(entity_id) for entity_id in info.entities]
    tables = await reflect_present(engine, sorted({entity.table.name for entity in entities}))
    out: list[Mismatch] = []
    for entity in entities:
        out += compare(info.source, entity, tables.get(entity.table.name))
    return out


def compare(source: str, entity: EntityInfo, table: Table | None) -> list[Mismatch]:
    """The mismatches of one entity against its reflected table (None: the table is missing)."""

    def miss(field: str | None, found: str, held: str = "") -> Mismatch:
        return Mismatch(source, entity.department, entity.name, field, found, held)

    if table is None:
        return [miss(None, f"table {entity.table.name} is not in the database")]
    columns = {column.name: column for column in table.columns}
    held = ", ".join(sorted(columns))
    out = []
    for item in entity.fields.values():
        column = columns.get(item.column)
        if column is None:
            out.append(miss(item.name, f"column {item.column} is not in table {table.name}", held))
            continue
        wrong = _type_mismatch(item, column.type)
        if wrong:
            out.append(miss(item.name, f"column {item.column} is {_spell(column.type)}; {wrong}"))
        if item.index_column is not None:
            index = columns.get(item.index_column)
            if index is None:
                found = f"its blind-index column {item.index_column} is not in table {table.name}"
                out.append(miss(item.name, found, held))
            elif not _stores(item.stored_as, index.type):
                need = _storage_need(item.stored_as)
                found = f"blind-index column {item.index_column} is {_spell(index.type)}; {need}"
                out.append(miss(item.name, found))
    key = entity.fields[entity.key]
    key_column = entity.table.key
    if key_column in columns and table.primary_key != (key_column,) and key_column not in table.unique:
        found = f"column {key_column} is neither the primary key nor declared unique in table {table.name}"
        out.append(miss(key.name, found))
    return out


def _spell(kind: sa.types.TypeEngine[Any]) -> str:
    try:
        return str(kind)
    except Exception:
        return type(kind).__name__


def _stores(storage: Storage, kind: sa.types.TypeEngine[Any]) -> bool:
    if isinstance(kind, sa.types.NullType):
        return True  # SQLite without a declared type holds anything
    if storage is Storage.BINARY:
        return isinstance(kind, sa.types._Binary)
    return isinstance(kind, sa.String)


def _storage_need(storage: Storage) -> str:
    if storage is Storage.BINARY:
        return "stored_as: binary needs a binary column (BYTEA, BLOB, VARBINARY)"
    return "stored_as: text needs a text column"


# What each field type may be read from. An ID may name an integer column (its values are
# carried as strings); a Boolean may be MySQL's TINYINT(1); a Decimal may read an integer.
_COMPATIBLE: dict[FieldType, tuple[type[sa.types.TypeEngine[Any]], ...]] = {
    FieldType.ID: (sa.String, sa.Integer),
    FieldType.STRING: (sa.String,),
    FieldType.INT: (sa.Integer,),
    FieldType.FLOAT: (sa.Float, sa.Numeric, sa.Integer),
    FieldType.DECIMAL: (sa.Numeric, sa.Integer),
    FieldType.BOOLEAN: (sa.Boolean, sa.Integer),
    FieldType.DATE: (sa.Date,),
    FieldType.DATETIME: (sa.DateTime,),
}


def _type_mismatch(item: FieldInfo, kind: sa.types.TypeEngine[Any]) -> str:
    """Why a column of type `kind` cannot hold `item`, or '' when it can."""
    if isinstance(kind, sa.types.NullType):
        return ""
    if item.encrypted:
        return "" if _stores(item.stored_as, kind) else f"an encrypted field with {_storage_need(item.stored_as)}"
    allowed = _COMPATIBLE[item.type]
    if item.type is FieldType.DECIMAL and isinstance(kind, sa.Float):
        # Money is never carried as a binary float (0.1 + 0.2 is not 0.3): a government's
        # amounts must add up to the cent. Refused, with the two ways out.
        return (
            "a Decimal field is never read from a floating-point column (it would round amounts): "
            "store it as NUMERIC(p, s) (in SQLite, a NUMERIC column), or declare the field Float "
            "if an approximate number will do"
        )
    if isinstance(kind, allowed):
        return ""
    article = "an" if item.type.value[0] in "AEIOU" else "a"
    return f"{article} {item.type.value} field needs {_NEEDS[item.type]}"


_NEEDS = {
    FieldType.ID: "a text or integer column",
    FieldType.STRING: "a text column",
    FieldType.INT: "an integer column",
    FieldType.FLOAT: "a numeric column",
    FieldType.DECIMAL: "a decimal (NUMERIC) or integer column",
    FieldType.BOOLEAN: "a boolean column",
    FieldType.DATE: "a date column",
    FieldType.DATETIME: "a date-time column",
}
