"""Tables of the versioned policy: one row per snapshot, one row per attempted change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base


class PolicySnapshotRow(Base):
    """A whole policy (rules, hierarchy, row rules, grants) as of one version; never updated.
    The primary key makes two concurrent changes from one version collide instead of both
    landing."""

    __tablename__ = "hub_policy_snapshot"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)


class PolicyChangeRow(Base):
    """Who asked for which change, when and why, and whether it was applied or refused."""

    __tablename__ = "hub_policy_change"
    # One applied change per caller and idempotency key (NULLs, changes sent without a key and
    # refusals, do not collide): a retry racing its original finds it instead of applying twice.
    __table_args__ = (Index("uq_hub_policy_change_actor_key", "actor", "idempotency_key", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    actor_department: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    edits: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(16))  # applied | refused
    detail: Mapped[str] = mapped_column(Text)
    # The version the change made (applied) or was made against (refused).
    version: Mapped[int] = mapped_column(Integer)
    # Refused attempts by the same caller past the per-minute bound, counted on the last
    # recorded one instead of stored each: the record stays complete in number, not floodable.
    repeats: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The caller's idempotency key of an applied change, and the digest of what it asked
    # (hub/policy/idempotency.py); None for changes sent without one, and for refusals.
    idempotency_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    request_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
