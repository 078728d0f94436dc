"""Backing up and restoring the wrapped keys of the hub database.

The hub database holds the only wrapped data keys: lose it and every encrypted value in every
department is lost. A backup is a JSON document of the wrapped keys (never a plain key) and the
ids of the master keys that wrap them; it is useless without those master keys, which are kept
apart from it. A restore goes into an empty hub database, and only after every key in the
document has been checked to unwrap under the master keys given.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crypto.errors import KeyringError
from hub.crypto.keyring import unwrap_row
from hub.crypto.master import MasterKey
from hub.crypto.models import WrappedKey

FORMAT = "hub-keys/1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackupKey(_Strict):
    purpose: str = Field(pattern=r"^(data|index|mask|signing)$")
    scope: str = Field(min_length=1, max_length=100)
    version: int = Field(ge=1)
    master_key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    wrapped: str  # standard base64
    created_at: datetime


class Backup(_Strict):
    format: Literal["hub-keys/1"]
    created_at: datetime
    master_key_ids: list[str]
    keys: list[BackupKey]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def parse_backup(text: str | bytes) -> Backup:
    try:
        return Backup.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise KeyringError(f"not a key backup ({FORMAT}): {where}: {first['msg']}") from None


async def backup_keys(session: AsyncSession, masters: Sequence[MasterKey] = ()) -> Backup:
    """Every wrapped key, as a backup document. Given master keys, first check that every key
    unwraps under one of them, so a backup that could not be restored is never written."""
    rows = (await session.scalars(select(WrappedKey).order_by(WrappedKey.id))).all()
    if masters:
        by_id = {m.id: m for m in masters}
        for row in rows:
            unwrap_row(row, by_id)
    keys = [
        BackupKey(
            purpose=row.purpose,
            scope=row.scope,
            version=row.version,
            master_key_id=row.master_key_id,
            wrapped=base64.b64encode(row.wrapped).decode("ascii"),
            created_at=row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC),
        )
        for row in rows
    ]
    return Backup(
        format=FORMAT,
        created_at=datetime.now(UTC),
        master_key_ids=sorted({k.master_key_id for k in keys}),
        keys=keys,
    )


async def restore_keys(session: AsyncSession, backup: Backup | str | bytes, masters: Sequence[MasterKey]) -> int:
    """Put a backup's keys into an empty hub database; returns how many. Nothing is written
    unless every key unwraps under one of `masters`. The caller commits."""
    document = backup if isinstance(backup, Backup) else parse_backup(backup)
    present: int | None = await session.scalar(select(func.count()).select_from(WrappedKey))
    if present:
        raise KeyringError(f"the hub database already holds {present} keys; restore only into an empty one")
    names = [(k.purpose, k.scope, k.version) for k in document.keys]
    if len(set(names)) != len(names):
        raise KeyringError("the backup names one key twice")
    by_id = {m.id: m for m in masters}
    rows: list[WrappedKey] = []
    for item in document.keys:
        try:
            wrapped = base64.b64decode(item.wrapped, validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError(f"the {item.purpose} key {item.scope} v{item.version} is not base64") from None
        row = WrappedKey(
            purpose=item.purpose,
            scope=item.scope,
            version=item.version,
            wrapped=wrapped,
            master_key_id=item.master_key_id,
            created_at=item.created_at,
        )
        unwrap_row(row, by_id)
        rows.append(row)
    session.add_all(rows)
    await session.flush()
    return len(rows)
