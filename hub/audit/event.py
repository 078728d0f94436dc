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
FORMAT = 1


def sole_operation(document: DocumentNode | None) -> str | None:
    """The name of a document's only operation (a request need not name it)."""
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].name is None:
        return None
    return operations[0].name.value


def persons_digest(persons: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(persons)).encode()).hexdigest()


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


@dataclass
class Event:
    """An event before it has a position (the writer gives it one)."""

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
    released: dict[str, Any]
    persons: frozenset[str] = field(default_factory=frozenset)

    def leaf(self, position: int) -> bytes:
        return canonical(position, {**self.columns(), "released": self.released})

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
            "released": orjson.dumps(self.released, option=orjson.OPT_SORT_KEYS).decode(),
            "persons": len(self.persons),
            "persons_digest": persons_digest(self.persons),
        }


LEAF_KEYS = {
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


def canonical(position: int, columns: Mapping[str, Any]) -> bytes:
    """The leaf of the event at `position` with these column values (`released` parsed)."""
    document = {LEAF_KEYS[name]: value for name, value in columns.items()}
    document["position"] = position
    document["v"] = FORMAT
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def stored_leaf(row: AuditEvent) -> bytes:
    """The leaf of an event as stored: what `verify` and the proofs recompute."""
    columns = {name: getattr(row, name) for name in LEAF_KEYS}
    columns["released"] = orjson.loads(row.released)
    return canonical(row.position, columns)


def exported(row: AuditEvent) -> dict[str, Any]:
    """An event as the HTTP endpoints and the command line show it: the leaf's own fields."""
    return orjson.loads(stored_leaf(row))  # type: ignore[no-any-return]
