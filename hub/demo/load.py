"""Loading the demo's rows into department databases through SQLAlchemy Core, with the fields
the manifests mark `encrypted` stored encrypted and blind-indexed.

Each department's tables are dropped and created again, then filled in batches of
`executemany` inserts, all in one transaction per department: an interrupted load leaves a
department's tables as they were or complete, never half-filled (except on MariaDB, whose DDL
commits implicitly). Departments may share one database; their table names never clash.

Which columns are encrypted comes from the demo manifests (hub.demo.catalog), not from this
module, so the data written and the hub that reads it cannot disagree. Values are encrypted a
column at a time with one cipher per field, bound to their cell as docs/stored-format.md says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.catalog import Catalog, EntityInfo
from hub.catalog.manifest import Storage
from hub.crypto.cells import FieldCells, row_keys
from hub.crypto.keyring import Keyring
from hub.demo.catalog import demo_catalog
from hub.demo.generate import Rows, generate
from hub.demo.scale import scaled
from hub.demo.tables import METADATA

BATCH = 5_000

Progress = Callable[[str, int, int], None]


async def load_demo(
    urls: Mapping[str, str],
    keyring: Keyring,
    *,
    seed: int = 2026,
    progress: Progress | None = None,
    scale: int = 1,
) -> dict[str, int]:
    """Create and fill the demo tables of each department in `urls` (department -> async URL),
    encrypting under `keyring`, which must hold the data keys of those departments and the
    blind-index keys of the demo's domains (hub.crypto.cells.open_keyring makes them).

    `progress(department, rows done, rows total)` is called after each batch. Returns the
    number of rows written per table. `scale` repeats every department's data that many times
    over (hub.demo.scale)."""
    unknown = sorted(set(urls) - set(METADATA))
    if unknown:
        raise ValueError(f"no demo department named {', '.join(unknown)}")
    departments = [d for d in METADATA if d in urls]
    if not departments:
        return {}
    # Generation and encryption are seconds of pure Python: keep them off the event loop.
    plain, sealer = await asyncio.to_thread(_prepare, seed, keyring, scale)
    engines: dict[str, AsyncEngine] = {}
    counts: dict[str, int] = {}

    # One department is encrypted while the one before it is written: SQLite and the network
    # drivers wait with the GIL released, so the two overlap.
    def seal(department: str) -> asyncio.Future[dict[str, Rows]]:
        return asyncio.ensure_future(asyncio.to_thread(sealer.seal, department, plain[department]))

    ahead = seal(departments[0])
    try:
        for number, department in enumerate(departments):
            tables = await ahead
            if number + 1 < len(departments):
                ahead = seal(departments[number + 1])
            url = urls[department]
            if url not in engines:
                engines[url] = _engine(url)
            counts |= await _write(engines[url], METADATA[department], department, tables, progress)
    finally:
        ahead.cancel()  # a no-op once it is done
        for engine in engines.values():
            await engine.dispose()
    return counts


async def _write(
    engine: AsyncEngine, metadata: MetaData, department: str, tables: Mapping[str, Rows], progress: Progress | None
) -> dict[str, int]:
    total = sum(len(rows) for rows in tables.values())
    done = 0
    counts: dict[str, int] = {}
    async with engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        # Parents before children, so foreign keys hold on every backend.
        for table in metadata.sorted_tables:
            rows = tables[table.name]
            for start in range(0, len(rows), BATCH):
                batch = rows[start : start + BATCH]
                await connection.execute(table.insert(), batch)
                done += len(batch)
                if progress is not None:
                    progress(department, done, total)
            counts[table.name] = len(rows)
    if progress is not None and total == 0:
        progress(department, 0, 0)
    return counts


def _prepare(seed: int, keyring: Keyring, scale: int = 1) -> tuple[dict[str, dict[str, Rows]], Sealer]:
    return scaled(generate(seed), scale), Sealer(keyring, demo_catalog())


class Sealer:
    """Turns plain demo rows into stored rows: every encrypted field's values encrypted for their
    cells, and blind indexes beside them."""

    def __init__(self, keyring: Keyring, catalog: Catalog) -> None:
        self._keyring = keyring
        self._entities: dict[str, list[EntityInfo]] = {}
        for entity in catalog:
            if any(f.encrypted for f in entity.fields.values()):
                self._entities.setdefault(entity.department, []).append(entity)
        # A person's ID number recurs in many tables; its index (unlike a ciphertext, which
        # takes a fresh nonce) is the same everywhere, so it is computed once.
        self._indexes: dict[tuple[str, Storage], dict[str, bytes | str]] = {}

    def seal(self, department: str, tables: Mapping[str, Rows]) -> dict[str, Rows]:
        """One department's rows as stored. The plain rows given are left as they are."""
        stored = dict(tables)
        for entity in self._entities.get(department, []):
            stored[entity.table.name] = self._entity(entity, tables[entity.table.name])
        return stored

    def _entity(self, entity: EntityInfo, rows: Rows) -> Rows:
        key_field = entity.fields[entity.key]
        keys = None if key_field.encrypted else row_keys(entity, [row[key_field.column] for row in rows])
        columns: dict[str, list[Any]] = {}
        encrypted = [f for f in entity.fields.values() if f.encrypted]
        # An encrypted key first: the row key of every value is its blind index.
        for item in sorted(encrypted, key=lambda f: f is not key_field):
            cells = FieldCells(self._keyring, entity, item)
            plain = [row[item.column] for row in rows]
            if item.index_column is not None and item.blind_index is not None:
                columns[item.index_column] = digests = self._index(cells, item.blind_index, plain)
                if item is key_field:
                    keys = row_keys(entity, digests)
            if keys is None:
                raise ValueError(f"{entity.id}: its encrypted key {key_field.name} has no blind index")
            # The cipher's own method where the column is binary: one call less per value.
            encrypt = cells.cipher.encrypt if item.stored_as is Storage.BINARY else cells.encrypt
            columns[item.column] = [None if v is None else encrypt(v, k) for v, k in zip(plain, keys, strict=True)]
        stored = [row.copy() for row in rows]
        for name, values in columns.items():
            for row, value in zip(stored, values, strict=True):
                row[name] = value
        return stored

    def _index(self, cells: FieldCells, domain: str, plain: list[Any]) -> list[bytes | str | None]:
        known = self._indexes.setdefault((domain, cells.item.stored_as), {})
        index_value = cells.index_value
        digests: list[bytes | str | None] = []
        for value in plain:
            if value is None:
                digests.append(None)
                continue
            digest = known.get(value)
            if digest is None:
                digest = known[value] = index_value(value)
            digests.append(digest)
        return digests


def _engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_async_engine(parsed)
