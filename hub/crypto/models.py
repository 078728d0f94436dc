"""The table of wrapped keys. It holds no key in plain: each row is a key encrypted under a master
key (which never enters the database), bound by its associated data to purpose, scope and version.

| purpose | scope                 | versions                         |
|---------|-----------------------|----------------------------------|
| data    | a department          | 1, 2, ... (the highest is used for new values) |
| index   | a blind-index domain  | 1                                |
| mask    | `*` (the mask root)   | 1; per (domain, receiver) keys are derived from it |
| signing | `audit`               | 1: the Ed25519 key of the access trail's tree heads |
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base

DATA = "data"
INDEX = "index"
MASK = "mask"
MASK_SCOPE = "*"
SIGNING = "signing"
SIGNING_SCOPE = "audit"


class WrappedKey(Base):
    __tablename__ = "hub_key"
    __table_args__ = (
        # Two concurrent rotations of one department collide here instead of both landing.
        UniqueConstraint("purpose", "scope", "version"),
        CheckConstraint("purpose IN ('data', 'index', 'mask', 'signing')", name="purpose"),
        CheckConstraint("version >= 1", name="version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    # Format byte, nonce, then the key encrypted under the master key, with its tag.
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    # Which master key wraps this row (hub.crypto.master.MasterKey.id); a rewrap moves rows
    # from one id to the other one at a time, so it can stop anywhere and resume.
    master_key_id: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
