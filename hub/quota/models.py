"""The tables of lookup quotas: per caller and hourly window, the count of distinct values it
supplied, and those values as keyed hashes (never the values: the table must not become a list
of whom each app looked up)."""

from __future__ import annotations

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base

# Bytes of a value's keyed hash: 128 bits keep collisions (two guesses counted as one) out of
# reach at any quota.
DIGEST_BYTES = 16


class LookupWindow(Base):
    __tablename__ = "hub_lookup_window"

    # The principal's subject (the app's registered name).
    principal: Mapped[str] = mapped_column(String(100), primary_key=True)
    # Hours since 1970-01-01T00:00Z: the window runs from this hour to the next.
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Distinct values counted in the window; the row is also what concurrent requests of one
    # caller lock, so that two instances cannot both spend the last of a quota.
    count: Mapped[int] = mapped_column(Integer)


class LookupSeen(Base):
    __tablename__ = "hub_lookup_seen"

    principal: Mapped[str] = mapped_column(String(100), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(DIGEST_BYTES), primary_key=True)
