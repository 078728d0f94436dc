"""Join values: how released rows carry the values relations join on.

A released row holds each join value under a (JOIN, field) key beside its released fields: a
relation may be followed where the field itself is not released. Blind indexes join as bytes;
an encrypted field whose relation reaches a plain column joins by its value, decrypted in
memory as a SealedJoin and never released.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Page
from hub.access.release import Released
from hub.catalog import Catalog, EntityInfo
from hub.catalog.model import FieldInfo
from hub.crypto.cells import FieldCells, index_bytes, row_keys
from hub.crypto.keyring import Keyring

# Released rows carry the raw values relations join on under (JOIN, field) keys: the join may be
# allowed where the field itself is not released, and string-keyed readers never see them.
JOIN = "join"


@dataclass(frozen=True, slots=True)
class SealedJoin:
    """The join value of an encrypted field whose relation reaches a plain column: its value,
    decrypted in memory to query the plain side by value, and never released (it travels
    under a JOIN key, which no caller's field reads; its repr hides it, so no log shows it)."""

    # The stored blind index beside it (None without one), for relations to indexed targets.
    index: bytes | None
    plain: str = field(repr=False)


def sealed_joins(catalog: Catalog) -> dict[str, frozenset[str]]:
    """Per entity, the encrypted fields that a relation joins to a plain (unindexed) column."""
    found: dict[str, set[str]] = {}
    for entity in catalog:
        for relation in entity.relations.values():
            source = entity.fields[relation.field]
            target = catalog.entity(relation.target).fields[relation.target_field]
            if source.encrypted and target.index_column is None:
                found.setdefault(entity.id, set()).add(source.name)
    return {entity_id: frozenset(names) for entity_id, names in found.items()}


def unseal(keyring: Keyring, entity: EntityInfo, item: FieldInfo, rows: Page, released: Released) -> None:
    """Each kept row's join value of encrypted `item`, decrypted as a SealedJoin; one that
    does not decrypt joins nothing (the field itself reports it where it is selected)."""
    cells = FieldCells(keyring, entity, item)
    stored = kept(released, rows.column(item.column))
    keys = row_keys(entity, kept(released, rows.column(entity.table.key)))
    indexes: Sequence[Any] = [None] * len(stored)
    if item.index_column is not None:
        indexes = [index_bytes(v) for v in kept(released, rows.column(item.index_column))]
    decrypted = cells.decrypt(stored, keys)
    for out, plain, index in zip(released.rows, decrypted, indexes, strict=True):
        out[(JOIN, item.name)] = SealedJoin(index, plain) if isinstance(plain, str) else None


def join_value(item: FieldInfo, value: Any) -> Any:
    # Blind indexes join as bytes, whichever form each department stores them in.
    return index_bytes(value) if item.index_column is not None else value


def kept(released: Released, values: Sequence[Any]) -> Sequence[Any]:
    """`values`, one per row fetched, for the rows the release kept."""
    indices = released.kept
    return values if indices is None else [values[i] for i in indices]


def union(columns: Sequence[str], extra: Sequence[str]) -> tuple[str, ...]:
    """`columns` then those of `extra` not among them: the columns a read fetches beside the
    caller's (join and match values, a cursor's order keys)."""
    return tuple(dict.fromkeys([*columns, *extra]))
