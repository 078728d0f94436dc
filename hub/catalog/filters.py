"""Translating a caller's filter and order (by field name) into connector terms (by column).

The GraphQL layer hands over plain mappings; this module knows the catalog, so it is where
field names become columns and where the fields a filter or order names are collected for the
access check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.base import And, Compare, Filter, In, IsNull, Like, Match, Not, Op, Or, OrderKey
from hub.catalog import EntityInfo
from hub.catalog.model import FieldInfo
from hub.crypto.blind_index import normaliser
from hub.errors import BadUserInput, LimitExceeded

FilterSpec = Mapping[str, Any]

OPS = {"eq": Op.EQ, "ne": Op.NE, "lt": Op.LT, "lte": Op.LTE, "gt": Op.GT, "gte": Op.GTE}
MATCHES = {"contains": Match.CONTAINS, "startsWith": Match.STARTS_WITH, "endsWith": Match.ENDS_WITH}
MAX_IN = 5000
MAX_NODES = 200
# Decimal filter values lie below 10^38 in magnitude and, unless zero, at or above 10^-38: what
# every department database compares. Past that, PostgreSQL refuses the parameter and MariaDB
# compares against a truncated value (asyncmy writes 1e999999999 out in full, a gigabyte).
DECIMAL_EXPONENTS = range(-38, 38)
# Date-times with an offset lie a day inside what Python holds, in UTC: every department's zone
# (within a day of UTC) can then read them on its clock.
EARLIEST, LATEST = datetime.min + timedelta(days=1), datetime.max - timedelta(days=1)


@dataclass
class CompiledFilter:
    where: Filter | None
    # Field name -> the operators used on it (the access check allows equality lookups).
    ops: dict[str, set[str]]

    @property
    def fields(self) -> set[str]:
        return set(self.ops)


# Turns a value of an encrypted field into its stored blind index (the keyring's, in the index
# column's form), so equality runs in SQL without decrypting anything.
Indexer = Callable[[FieldInfo, str], Any]

# What an encrypted field can be filtered by: equality of blind indexes, and presence.
ENCRYPTED_OPS = frozenset({"eq", "ne", "in", "isNull"})


def compile_filter(entity: EntityInfo, spec: FilterSpec | None, indexer: Indexer | None = None) -> CompiledFilter:
    ops: dict[str, set[str]] = {}
    budget = [MAX_NODES]
    where = _compile(entity, spec, ops, budget, indexer) if spec else None
    return CompiledFilter(where, ops)


def _compile(
    entity: EntityInfo,
    spec: FilterSpec,
    fields: dict[str, set[str]],
    budget: list[int],
    indexer: Indexer | None,
    nested: bool = False,
) -> Filter | None:
    """`nested` is true under `or` and `not`, where an equality no longer pins one value: the
    operators used there are recorded as `or:<op>` so they never count as a plain lookup."""
    parts: list[Filter] = []
    for key, value in spec.items():
        if value is None:
            continue
        budget[0] -= 1
        if budget[0] < 0:
            raise LimitExceeded(f"a filter may have at most {MAX_NODES} conditions")
        if key in ("and", "or"):
            inner_nested = nested or key == "or"
            compiled = (_compile(entity, s, fields, budget, indexer, inner_nested) for s in value)
            items = [c for c in compiled if c is not None]
            if items:
                parts.append(And(tuple(items)) if key == "and" else Or(tuple(items)))
            elif key == "or":
                # An empty OR matches nothing, as in logic; an empty AND matches everything.
                parts.append(In(entity.table.key, ()))
        elif key == "not":
            inner = _compile(entity, value, fields, budget, indexer, True)
            if inner is not None:
                parts.append(Not(inner))
        else:
            parts.extend(_field(entity, key, value, fields, indexer, nested))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _field(
    entity: EntityInfo,
    name: str,
    ops: Mapping[str, Any],
    fields: dict[str, set[str]],
    indexer: Indexer | None,
    nested: bool = False,
) -> list[Filter]:
    item = entity.fields.get(name)
    if item is None:
        raise BadUserInput(f"{entity.type_name} has no field {name}")
    used = fields.setdefault(name, set())
    used.update(("or:" if nested else "") + op for op, value in ops.items() if value is not None)
    if item.encrypted:
        return _encrypted(entity, item, ops, indexer)
    column = item.column
    out: list[Filter] = []
    for op, value in ops.items():
        if value is None:
            continue
        if item.blind_index is not None and op in ("eq", "in"):
            # A plain identifier of an index domain: one value in all its spellings, so an
            # ID number's x finds a row that holds X (and counts once against the quota).
            given = value if op == "in" else [value]
            if len(given) > MAX_IN:
                raise LimitExceeded(f"an `in` list may hold at most {MAX_IN} values")
            out.append(In(column, tuple(dict.fromkeys(s for v in given for s in spellings(item.blind_index, str(v))))))
        elif op in OPS:
            out.append(Compare(column, OPS[op], _comparable(entity, name, value)))
        elif op == "in":
            if len(value) > MAX_IN:
                raise LimitExceeded(f"an `in` list may hold at most {MAX_IN} values")
            out.append(In(column, tuple(_comparable(entity, name, v) for v in value)))
        elif op in MATCHES:
            out.append(Like(column, MATCHES[op], str(value)))
        elif op == "isNull":
            out.append(IsNull(column, bool(value)))
        else:
            raise BadUserInput(f"unknown filter operator {op} on {entity.type_name}.{name}")
    return out


def spellings(domain: str, value: str) -> tuple[str, ...]:
    """`value` as given, in `domain`'s normal form, and that in lower case: how a plain
    column of the domain may hold it (SQL compares text exactly)."""
    normal = normaliser(domain)(value)
    return tuple(dict.fromkeys((value, normal, normal.lower())))


def _comparable(entity: EntityInfo, name: str, value: Any) -> Any:
    """`value`, if every department database can compare a column with it; BadUserInput if not."""
    if isinstance(value, Decimal) and not (
        value.is_finite() and (value.is_zero() or value.adjusted() in DECIMAL_EXPONENTS)
    ):
        raise BadUserInput(
            f"{entity.type_name}.{name} compares with finite decimals below 10^38 in magnitude "
            "(and, unless zero, at least 10^-38)"
        )
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            utc = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            utc = datetime.max
        if not EARLIEST <= utc <= LATEST:
            raise BadUserInput(f"{entity.type_name}.{name} compares with date-times from year 1 to 9999 (in UTC)")
    return value


def _encrypted(entity: EntityInfo, item: FieldInfo, ops: Mapping[str, Any], indexer: Indexer | None) -> list[Filter]:
    """Conditions on an encrypted field, on its blind index: the stored values are never
    compared, and nothing is decrypted to search."""
    where = f"{entity.type_name}.{item.name}"
    given = {op for op, value in ops.items() if value is not None}
    allowed = ENCRYPTED_OPS if item.index_column is not None else frozenset({"isNull"})
    refused = sorted(given - allowed)
    if refused:
        kinds, asked = ", ".join(sorted(allowed)), ", ".join(refused)
        raise BadUserInput(f"{where} is encrypted at rest: it can be filtered by {kinds} only, not {asked}")
    out: list[Filter] = []
    for op in sorted(given):
        value = ops[op]
        if op == "isNull":
            out.append(IsNull(item.column, bool(value)))
            continue
        assert indexer is not None and item.index_column is not None
        if op == "in":
            if len(value) > MAX_IN:
                raise LimitExceeded(f"an `in` list may hold at most {MAX_IN} values")
            out.append(In(item.index_column, tuple(indexer(item, str(v)) for v in value)))
        else:
            out.append(Compare(item.index_column, OPS[op], indexer(item, str(value))))
    return out


def compile_order(entity: EntityInfo, order: Sequence[tuple[str, bool]]) -> tuple[tuple[OrderKey, ...], set[str]]:
    """`order` is (field name, descending) pairs; the key is appended by the connector."""
    keys: list[OrderKey] = []
    names: set[str] = set()
    for name, descending in order:
        item = entity.fields.get(name)
        if item is None:
            raise BadUserInput(f"{entity.type_name} has no field {name} to order by")
        if name in names:
            raise BadUserInput(f"{entity.type_name}.{name} appears twice in orderBy")
        if item.encrypted:
            raise BadUserInput(f"{entity.type_name}.{name} is encrypted at rest and cannot be ordered by")
        names.add(name)
        keys.append(OrderKey(item.column, descending))
    return tuple(keys), names
