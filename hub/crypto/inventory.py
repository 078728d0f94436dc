"""The inventory of the key material: every wrapped key in the hub database, the master key it
names, and whether the master keys at hand open it. What an operator checks before and after a
rotation, rewrap, backup or restore; it never holds or shows a key's bytes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crypto.errors import KeyringError
from hub.crypto.keyring import unwrap_row
from hub.crypto.master import MasterKey
from hub.crypto.models import DATA, WrappedKey


@dataclass(frozen=True)
class KeyEntry:
    purpose: str
    scope: str
    version: int
    master_key_id: str
    created_at: datetime
    # Why the master keys given do not open it; None if they do, or if none were given.
    problem: str | None

    @property
    def name(self) -> str:
        return f"{self.purpose} key {self.scope} v{self.version}"


@dataclass(frozen=True)
class Inventory:
    keys: list[KeyEntry]
    checked_with: list[str]  # ids of the master keys the keys were checked against

    @property
    def data_versions(self) -> dict[str, int]:
        """The version new values of each department are encrypted under (the highest)."""
        current: dict[str, int] = {}
        for key in self.keys:
            if key.purpose == DATA:
                current[key.scope] = max(key.version, current.get(key.scope, 0))
        return dict(sorted(current.items()))

    @property
    def by_master(self) -> dict[str, int]:
        """How many keys each master key wraps."""
        return dict(sorted(Counter(k.master_key_id for k in self.keys).items()))

    @property
    def problems(self) -> list[KeyEntry]:
        return [k for k in self.keys if k.problem is not None]

    def require_open(self) -> None:
        """Raise, naming the first key and how many others, unless every key opened."""
        problems = self.problems
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise KeyringError(f"{problems[0].problem}{more}")


async def take_inventory(session: AsyncSession, masters: Sequence[MasterKey] = ()) -> Inventory:
    """Every wrapped key, each checked against `masters` if any are given."""
    by_id = {m.id: m for m in masters}
    rows = (await session.scalars(select(WrappedKey).order_by(WrappedKey.id))).all()
    keys = []
    for row in rows:
        problem = None
        if by_id:
            try:
                unwrap_row(row, by_id)
            except KeyringError as error:
                problem = str(error)
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        keys.append(KeyEntry(row.purpose, row.scope, row.version, row.master_key_id, created, problem))
    session.expunge_all()
    return Inventory(keys, sorted(by_id))
