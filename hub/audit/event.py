"""One trail event and its canonical leaf: the bytes the Merkle tree hashes.

The leaf is the UTF-8 of a JSON object with keys sorted by code point and no whitespace
(orjson's OPT_SORT_KEYS), holding every column of the event row and its position, integers as
JSON integers, absent values as null. `released` is itself a JSON value inside it (not a
string), and the persons touched enter as their count and `personsDigest`, the SHA-256 (hex)
of their sorted hex blind indexes joined by newlines. docs/audit.md gives the format with an
example; a third party recomputes the leaf from an exported event with any JSON library that
sorts keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import DocumentNode, OperationDefinitionNode

from hub.access.record import AccessRecord
from hub.audit.models import AuditEvent

# The leaf format's version: part of every leaf, so a later format cannot be mistaken for it.
FORMAT = 2


def sole_operation(document: DocumentNode | None) -> str | None:
    """The name of a document's only operation (a request need not name it)."""
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].name is None:
        return None
    return operations[0].name.value


def persons_digest(lines: Iterable[str]) -> str:
    """SHA-256 (hex) of the sorted lines joined by newlines: in format 1 a line is a person's hex
    blind index, in format 2 the index, a space and the entities (`person_lines`)."""
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def released_of(record: AccessRecord | None) -> dict[str, Any]:
    """What a request released, as stored: rows per entity, values per (entity, field, level),
    and for aggregates the fields grouped or measured and the groups suppressed (present only
    where the request aggregated, so the leaves of other events keep their form)."""
    if record is None:
        return {"fields": [], "rows": {}}
    fields = sorted([e, f, d.value, n] for (e, f, d), n in record.released.items() if n)
    released: dict[str, Any] = {"fields": fields, "rows": {e: n for e, n in sorted(record.rows.items()) if n}}
    if record.aggregated_entities:
        released["aggregates"] = sorted(record.aggregated_entities)
        released["aggregated"] = sorted([e, f] for e, f in record.aggregated)
        released["suppressedGroups"] = record.suppressed_groups
    if record.links:
        # Present only where the request recorded lineage links (docs/audit.md).
        released["links"] = sorted(record.links)
    return released


@dataclass(frozen=True)
class EventFacts:
    """What every event says, stored and shown alike: when, who asked, with which purpose and
    operation, how it ended, and under which policy version."""

    at_us: int
    principal: str
    department: str
    purpose: str | None
    operation_hash: str | None
    operation_name: str | None
    document_id: str | None
    outcome: str
    status: int
    code: str | None
    policy_version: str | None


@dataclass(frozen=True)
class Event(EventFacts):
    """An event before it has a position (the writer gives it one)."""

    released: dict[str, Any]
    # Persons touched: hex blind index -> the entities whose released rows were theirs, sorted
    # and joined by commas (entity ids hold none).
    persons: Mapping[str, str] = field(default_factory=dict)
    kind: str = "request"
    # An admin event's action (hub/audit/admin.py), a JSON object; None for a request.
    action: dict[str, Any] | None = None
    # The departments an admin event concerns, ",a,b," (",*," for all); None for a request.
    concerns: str | None = None

    def leaf(self, position: int) -> bytes:
        return self.leaf_of(position, self.columns())

    def leaf_of(self, position: int, columns: dict[str, Any]) -> bytes:
        """The leaf, given this event's `columns()` (made once for the row and the leaf)."""
        return canonical(position, {**columns, "released": self.released, "action": self.action})

    def columns(self) -> dict[str, Any]:
        """The row's columns but its position."""
        return {
            "at_us": self.at_us,
            "principal": self.principal,
            "department": self.department,
            "purpose": self.purpose,
            "operation_hash": self.operation_hash,
            "operation_name": self.operation_name,
            "document_id": self.document_id,
            "outcome": self.outcome,
            "status": self.status,
            "code": self.code,
            "policy_version": self.policy_version,
            "released": _text(self.released),
            "persons": len(self.persons),
            "persons_digest": persons_digest(person_lines(self.persons.items())),
            "format": FORMAT,
            "kind": self.kind,
            "action": None if self.action is None else _text(self.action),
            "concerns": self.concerns,
        }


def _text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def person_lines(persons: Iterable[tuple[str, str]]) -> list[str]:
    """The lines of format 2's persons digest: `<hex blind index> <entities>` per person."""
    return [f"{person} {entities}" for person, entities in persons]


# Column -> leaf key, per leaf format. Format 1 (before admin events) lacks the last three.
LEAF_KEYS_1 = {
    "at_us": "atUs",
    "principal": "principal",
    "department": "department",
    "purpose": "purpose",
    "operation_hash": "operationHash",
    "operation_name": "operationName",
    "document_id": "documentId",
    "outcome": "outcome",
    "status": "status",
    "code": "code",
    "policy_version": "policyVersion",
    "released": "released",
    "persons": "persons",
    "persons_digest": "personsDigest",
}
LEAF_KEYS = {**LEAF_KEYS_1, "kind": "kind", "action": "action", "concerns": "concerns"}
KEYS_OF = {1: LEAF_KEYS_1, 2: LEAF_KEYS}
# Every column a leaf is made of, the format included: what `verify` and the proofs read.
LEAF_COLUMNS = (*LEAF_KEYS, "format")


def canonical(position: int, columns: Mapping[str, Any]) -> bytes:
    """The leaf of the event at `position` with these column values (`released` and `action`
    parsed), in the format `columns["format"]` names."""
    version = columns["format"]
    keys = KEYS_OF[version]
    document = {keys[name]: value for name, value in columns.items() if name in keys}
    document["position"] = position
    document["v"] = version
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def parsed(columns: dict[str, Any]) -> dict[str, Any]:
    """Stored columns with `released` and `action` parsed back from their JSON text."""
    columns["released"] = orjson.loads(columns["released"])
    if columns.get("action") is not None:
        columns["action"] = orjson.loads(columns["action"])
    return columns


def embedded(columns: dict[str, Any]) -> dict[str, Any]:
    """Stored columns with `released` and `action` embedded as the JSON text they are stored as
    (written canonical, keys sorted): the same leaf as `parsed` gives for an untouched row, with
    no parse and dump of each; a row whose text was changed in any byte gives another leaf."""
    columns["released"] = orjson.Fragment(columns["released"])
    if columns.get("action") is not None:
        columns["action"] = orjson.Fragment(columns["action"])
    return columns


def stored_leaf(row: AuditEvent) -> bytes:
    """The leaf of an event as stored: what `verify` and the proofs recompute."""
    return canonical(row.position, parsed({name: getattr(row, name) for name in LEAF_COLUMNS}))


def exported(row: AuditEvent) -> dict[str, Any]:
    """An event as the HTTP endpoints and the command line show it: the leaf's own fields."""
    return orjson.loads(stored_leaf(row))  # type: ignore[no-any-return]
