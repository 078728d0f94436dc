"""The recorded links' table: rows are only ever added.

`hub_lineage_link`: one row per recording or retraction (a retraction names the link it
supersedes). Each row holds the SHA-256 of the one before it and of its own canonical form
(hub/lineage/chain.py), and a recording's row hash is written into the audit event of the
request that made it, so `hub lineage verify` finds a row changed, removed or put back in
another order. Keys are stored as the departments store them (blind indexes for encrypted
keys), never as plain ID numbers.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base


class LineageLink(Base):
    __tablename__ = "hub_lineage_link"
    __table_args__ = (
        # A retried request (same caller, same key) applies once.
        UniqueConstraint("recorded_by", "idempotency_key"),
        # One successor per row: two writers appending at once cannot both extend the chain.
        UniqueConstraint("prev_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    from_entity: Mapped[str] = mapped_column(String(200), index=True)
    from_key: Mapped[str] = mapped_column(String(200))
    to_entity: Mapped[str] = mapped_column(String(200), index=True)
    to_key: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    recorded_by: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(100))
    # Microseconds since 1970-01-01T00:00Z.
    at_us: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    # For a retraction: the id of the link it supersedes.
    retracts: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))
