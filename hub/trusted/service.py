"""Registering, finding, listing and removing trusted documents.

A trusted document is an operation document an operator has registered; apps then send its
id (`"sha256:<hex>"`) instead of the text, and the hub runs it from a plan compiled once,
without parsing or validating it per request. Checking that a document is valid against the
schema is the caller's job (the command line does it before registering): this module only
keeps the texts. Services take a session and never commit.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.trusted.models import TrustedDocument

PREFIX = "sha256:"
_ID = re.compile(r"sha256:[0-9a-f]{64}")
MAX_NAME = 200


class DocumentError(Exception):
    """A document command cannot be carried out; the message says why."""


@dataclass(frozen=True)
class DocumentListing:
    id: str
    name: str
    registered_at: datetime
    removed_at: datetime | None
    size: int


def document_id(text: str) -> str:
    """The id of a document: its SHA-256 over the exact UTF-8 text (whitespace counts)."""
    return PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_document_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


async def register_document(session: AsyncSession, text: str, *, name: str) -> str:
    """Register `text` under `name` and return its id. Registering a document again is
    harmless (it keeps its first name) and brings back one that was removed."""
    if not text.strip():
        raise DocumentError("the document is empty")
    if not name or len(name) > MAX_NAME:
        raise DocumentError(f"a document's name must be 1 to {MAX_NAME} characters")
    found_id = document_id(text)
    row = await session.get(TrustedDocument, found_id)
    if row is None:
        session.add(TrustedDocument(id=found_id, name=name, body=text, registered_at=datetime.now(UTC)))
    elif row.removed_at is not None:
        row.removed_at = None
    await session.flush()
    return found_id


async def find_document(session: AsyncSession, id_: str) -> str | None:
    """The text of a live document, or None if the id is unknown or was removed."""
    if not is_document_id(id_):
        return None
    return (
        await session.execute(
            select(TrustedDocument.body).where(TrustedDocument.id == id_, TrustedDocument.removed_at.is_(None))
        )
    ).scalar_one_or_none()


async def list_documents(session: AsyncSession, *, removed: bool = False) -> list[DocumentListing]:
    query = select(TrustedDocument).order_by(TrustedDocument.name, TrustedDocument.id)
    if not removed:
        query = query.where(TrustedDocument.removed_at.is_(None))
    rows = (await session.execute(query)).scalars().all()
    return [DocumentListing(r.id, r.name, r.registered_at, r.removed_at, len(r.body.encode())) for r in rows]


async def live_documents(session: AsyncSession) -> list[tuple[str, str, str]]:
    """(id, name, text) of every live document, for checking them against a new schema."""
    query = select(TrustedDocument.id, TrustedDocument.name, TrustedDocument.body).where(
        TrustedDocument.removed_at.is_(None)
    )
    return [(row.id, row.name, row.body) for row in (await session.execute(query.order_by(TrustedDocument.name)))]


async def remove_document(session: AsyncSession, id_: str) -> None:
    """Stop running a document by id (the row stays, marked removed)."""
    row = await session.get(TrustedDocument, id_) if is_document_id(id_) else None
    if row is None:
        raise DocumentError(f"no trusted document {id_[:80]!r}")
    if row.removed_at is None:
        row.removed_at = datetime.now(UTC)
        await session.flush()
