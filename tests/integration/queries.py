"""Generated GraphQL documents over the whole catalog, for the leak test.

A `Root` is one aliased top-level field: a list page, a by-key read, a list with relations one
level deep, or a list filtered or ordered on one field. `render` puts several roots in one
document (each keeps its own alias, so an error or a null in one leaves the others as they are).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hub.catalog import EntityInfo, RelationInfo
from hub.catalog.manifest import FieldType, snake

VARIABLE_TYPE = {
    FieldType.ID: "String",
    FieldType.STRING: "String",
    FieldType.INT: "Int",
    FieldType.FLOAT: "Float",
    FieldType.DECIMAL: "Decimal",
    FieldType.BOOLEAN: "Boolean",
    FieldType.DATE: "Date",
    FieldType.DATETIME: "DateTime",
}

# The hub's default limit on aliases per operation (HUB settings `max_aliases`).
MAX_ALIASES = 30


@dataclass(frozen=True)
class Condition:
    """`filter: {field: {eq: value}}` or `filter: {field: {isNull: true}}`."""

    field: str
    op: Literal["eq", "isNull"]
    # The value as stored (for working out the expected rows) and as sent (a JSON variable).
    value: Any = None
    sent: Any = None


@dataclass(frozen=True)
class Follow:
    """A relation selected under a root, with the target's scalar fields it selects."""

    relation: RelationInfo
    target: EntityInfo
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Root:
    alias: str
    entity: EntityInfo
    fields: tuple[str, ...]
    follows: tuple[Follow, ...] = ()
    key: str | None = None
    first: int | None = None
    offset: int | None = None
    total: bool = False
    condition: Condition | None = None
    order: str | None = None

    @property
    def is_list(self) -> bool:
        return self.key is None

    @property
    def base(self) -> tuple[str, ...]:
        """Where this root's rows sit, as access paths and FORBIDDEN errors name them."""
        return (self.alias, "nodes", "*") if self.is_list else (self.alias,)

    @property
    def narrowed_by(self) -> str | None:
        """The field a filter or order names, if any."""
        return self.condition.field if self.condition is not None else self.order


def render(roots: Sequence[Root]) -> tuple[str, dict[str, Any]]:
    """One query document holding every root, and its variables."""
    declared: list[str] = []
    variables: dict[str, Any] = {}
    parts: list[str] = []
    for root in roots:
        args: list[str] = []
        if root.key is not None:
            args.append(f"key: {json.dumps(root.key)}")
        if root.condition is not None:
            condition = root.condition
            if condition.op == "isNull":
                args.append(f"filter: {{{condition.field}: {{isNull: true}}}}")
            else:
                name = f"v{len(variables)}"
                declared.append(f"${name}: {VARIABLE_TYPE[root.entity.fields[condition.field].type]}")
                variables[name] = condition.sent
                args.append(f"filter: {{{condition.field}: {{eq: ${name}}}}}")
        if root.order is not None:
            args.append(f"orderBy: [{snake(root.order).upper()}_ASC]")
        if root.first is not None:
            args.append(f"first: {root.first}")
        if root.offset is not None:
            args.append(f"offset: {root.offset}")
        selection = " ".join([*root.fields, *(f"{f.relation.name} {{ {' '.join(f.fields)} }}" for f in root.follows)])
        if root.is_list:
            selection = f"nodes {{ {selection} }}" + (" totalCount" if root.total else "")
        field = root.entity.list_field if root.is_list else root.entity.key_field
        arguments = f"({', '.join(args)})" if args else ""
        parts.append(f"{root.alias}: {field}{arguments} {{ {selection} }}")
    header = f"query({', '.join(declared)})" if declared else "query"
    return f"{header} {{\n  " + "\n  ".join(parts) + "\n}", variables


def batches(roots: Sequence[Root], size: int = MAX_ALIASES) -> Iterator[list[Root]]:
    """Roots in documents of at most `size` aliases."""
    for start in range(0, len(roots), size):
        yield list(roots[start : start + size])
