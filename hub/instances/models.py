"""The tables instances share: the change serial and the published catalog hash.

`hub_change` has one row. On PostgreSQL a trigger on every table whose change must reach all
instances at once (policy versions, apps, tokens, keys, trusted documents) adds one to its
serial and sends a notification on `CHANNEL`, both at the writer's commit (migration 0010); on
SQLite (one instance) there is no trigger and no listener.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base

# The notification channel the triggers send on and every instance listens to.
CHANNEL = "hub_changes"
# The tables whose writes the triggers announce.
WATCHED = ("hub_policy_snapshot", "hub_app", "hub_app_token", "hub_key", "hub_document")


class ChangeSerial(Base):
    __tablename__ = "hub_change"

    # Always 1: one row, so an instance reads the serial with one primary-key lookup.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    serial: Mapped[int] = mapped_column(BigInteger)


class PublishedCatalog(Base):
    __tablename__ = "hub_catalog"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # "sha256:" and the hex digest over the manifest files (catalog_hash.py).
    hash: Mapped[str] = mapped_column(String(71))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # "first instance" or "hub catalog publish".
    published_by: Mapped[str] = mapped_column(String(100))
