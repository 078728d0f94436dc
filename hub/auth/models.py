"""Tables of registered apps and their tokens. Tokens are stored as SHA-256 digests only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.db.base import Base


class App(Base):
    __tablename__ = "hub_app"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    department: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(JSON)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    tokens: Mapped[list[AppToken]] = relationship(back_populates="app", order_by="AppToken.id")


class AppToken(Base):
    __tablename__ = "hub_app_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("hub_app.id", ondelete="CASCADE"), index=True)
    # A high-entropy random token needs no slow hash: SHA-256 cannot be reversed, and a lookup
    # by digest stays one indexed read per request.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, shown in listings so an operator can tell tokens apart.
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    app: Mapped[App] = relationship(back_populates="tokens")
