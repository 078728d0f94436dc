"""The table of trusted documents: each operation document the hub will run by its id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base


class TrustedDocument(Base):
    __tablename__ = "hub_document"

    # "sha256:" and the hex digest of the UTF-8 text: the id apps send. The id is the text's
    # hash, so a row can never be changed into another document under the same id.
    id: Mapped[str] = mapped_column(String(71), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Removal keeps the row (who ran what stays explainable); the id stops working.
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
