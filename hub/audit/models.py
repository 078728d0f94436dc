"""The trail's tables. Rows are only ever added (the archive, later, removes the oldest).

- `hub_audit_event`: one row per request of an authenticated caller, at its log position.
- `hub_audit_person`: the persons each event touched, by blind index (never a plain identifier),
  keyed by (person, time) so one person's history is an index range.
- `hub_audit_person_backlog`: the persons of an event that touched many (a W1 list), kept with
  the event in its flush's transaction until they are moved into `hub_audit_person` off the
  request's path (hub/audit/backlog.py); readers of persons read both.
- `hub_audit_node`: the hash of every complete subtree of the Merkle tree (hub/audit/merkle.py),
  so roots and proofs read O(log n) rows, whatever the log's size.
- `hub_audit_log`: one row, the log's size (and how much of it is archived); every writer locks
  it to append, so positions follow one order across processes.
- `hub_audit_tree_head`: signed tree heads.
- `hub_audit_anonymous`: requests without a valid token, counted per source address and minute.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base

OUTCOMES = ("served", "partly_served", "refused", "failed", "applied")
# What an event records: a GraphQL request, or an admin action (hub/audit/admin.py). Another kind
# (lineage's recorded links) is one more name here: the column has no check, the writer checks
# the name against this list.
KINDS = ("request", "admin")


class AuditEvent(Base):
    __tablename__ = "hub_audit_event"
    __table_args__ = (
        # No index by principal or department yet: each costs every request a write, and no
        # query reads by them before the auditors' `auditEvents` lands (with its indexes).
        CheckConstraint("outcome IN ('served', 'partly_served', 'refused', 'failed', 'applied')", name="outcome"),
    )

    # The leaf index in the Merkle tree, from 0, without gaps.
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # Microseconds since 1970-01-01T00:00Z: an integer, so the leaf reads back identically from
    # every database.
    at_us: Mapped[int] = mapped_column(BigInteger, index=True)
    principal: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str | None] = mapped_column(String(100))
    # SHA-256 of the operation's text, hex; the operation name and the trusted document's id.
    operation_hash: Mapped[str | None] = mapped_column(String(64))
    operation_name: Mapped[str | None] = mapped_column(String(200))
    document_id: Mapped[str | None] = mapped_column(String(80))
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)
    # The first error's code, if any.
    code: Mapped[str | None] = mapped_column(String(32))
    policy_version: Mapped[str | None] = mapped_column(String(64))
    # Canonical JSON (docs/audit.md): rows per entity, values per (entity, field, level).
    released: Mapped[str] = mapped_column(Text)
    # How many persons the event touched, and SHA-256 over their sorted blind indexes (hex),
    # so the leaf covers the person rows without holding them.
    persons: Mapped[int] = mapped_column(Integer)
    persons_digest: Mapped[str] = mapped_column(String(64))
    # The leaf format the event was written in (docs/audit.md): 1 before admin events and
    # persons per entity, 2 since; `verify` recomputes each leaf in its own format.
    format: Mapped[int] = mapped_column(Integer, server_default="1")
    # request or admin (KINDS); an admin event's action (canonical JSON: name, target, reason,
    # detail, edits) and the departments it concerns, as ",a,b," (",*," for all), so a steward's
    # scope is one LIKE on a delimited list of validated names.
    kind: Mapped[str] = mapped_column(String(32), server_default="request")
    action: Mapped[str | None] = mapped_column(Text)
    concerns: Mapped[str | None] = mapped_column(Text)


class AuditPerson(Base):
    __tablename__ = "hub_audit_person"
    __table_args__ = (
        Index("ix_hub_audit_person_person_at", "person", "at_us"),
        # On SQLite the rows live in the primary key's own tree (no rowid, so no third tree to
        # write): an event's rows are appended at its position, and only the (person, time)
        # index takes scattered writes.
        {"sqlite_with_rowid": False},
    )

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # The blind index of the person's resident ID number (domain resident_id), its 32 raw bytes:
    # half the size of its hex, so twice as many entries share an index page. Everything shown
    # (GraphQL, archive lines, the persons digest, proofs) is still the hex (hub/audit/rows.py
    # converts, hub/audit/store.py converts back).
    person: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    at_us: Mapped[int] = mapped_column(BigInteger)
    # The entities whose released rows were this person's, sorted and joined by commas ("" in
    # events of format 1, which kept one set of persons per request).
    entities: Mapped[str] = mapped_column(Text, server_default="")


class AuditPersonBacklog(Base):
    """An event's persons not yet in `hub_audit_person`, written in the event's own transaction
    (so they are as durable as the event) and moved into the index by hub/audit/backlog.py."""

    __tablename__ = "hub_audit_person_backlog"

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at_us: Mapped[int] = mapped_column(BigInteger)
    # The runs of `persons`, in order: a JSON list of [entities, count] (hub/audit/backlog.py).
    runs: Mapped[str] = mapped_column(Text)
    # The persons' raw blind indexes (32 bytes each), end to end.
    persons: Mapped[bytes] = mapped_column(LargeBinary)


# A subtree's key: its level in the top bits, its index below (a log of 2**48 events fits).
NODE_SHIFT = 48


def node_key(level: int, idx: int) -> int:
    return (level << NODE_SHIFT) | idx


class AuditNode(Base):
    __tablename__ = "hub_audit_node"

    # node_key(level, index): one integer, so a proof's subtrees are one `IN` on the primary
    # key, a statement of one shape whatever the subtrees (compiled once, searched by index).
    node: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditLog(Base):
    __tablename__ = "hub_audit_log"
    __table_args__ = (CheckConstraint("id = 1", name="single"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    # Events below this position were moved to archive files (`hub audit archive`).
    archived: Mapped[int] = mapped_column(BigInteger, server_default="0")


class AuditTreeHead(Base):
    __tablename__ = "hub_audit_tree_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    at_us: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    # The signing key's id (hub/crypto/signing.py), so heads survive a key change.
    key_id: Mapped[str] = mapped_column(String(16))


class AuditAnonymous(Base):
    __tablename__ = "hub_audit_anonymous"
    __table_args__ = (Index("ix_hub_audit_anonymous_minute_address", "minute", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Minutes since 1970-01-01T00:00Z.
    minute: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)
