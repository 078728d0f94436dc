"""What encryption costs the release step: W1's 10,000 service deliveries by 12 fields, three of
them encrypted (recipientName, recipientIdNumber, recipientMobile) and released plain, against
the same rows with those fields stored plain.

The target (issue 4): the whole release step for the 30,000 encrypted values (parse the stored
value, decrypt, decode) under 60 ms per request. Run: `.venv/bin/python -m bench.release_step`.

In process, no database: the rows are the demo's deliveries (hub.demo.generate), encrypted as a
department stores them (binary columns, as PostgreSQL's driver returns them: `bytes`; and the
text form for comparison). Each sample runs the hub's Releaser over all 10,000 rows and 12 fields
with a plan that releases everything plain, exactly as a request does after its fetch.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from pathlib import Path
from typing import Any

from hub.access.plan import Planner, ReleaseEverything, Selection
from hub.access.record import AccessRecord
from hub.access.release import Releaser
from hub.auth.principal import Principal
from hub.catalog import Catalog, EntityInfo, load_catalog
from hub.catalog.manifest import Storage
from hub.catalog.model import table_spec
from hub.crypto.cells import FieldCells, row_keys
from hub.crypto.fields import DataKeys
from hub.crypto.keyring import Keyring
from hub.demo.generate import generate

MANIFESTS = Path(__file__).resolve().parents[1] / "hub" / "demo" / "manifests"
ENTITY = "civil_affairs.ServiceDelivery"
ROWS = 10_000
WARMUPS, SAMPLES = 3, 15


def keyring() -> Keyring:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # bench only: hub.crypto owns it

    return Keyring(
        {"civil_affairs": DataKeys(1, {1: AESGCM(os.urandom(32))})},
        {"resident_id": os.urandom(32), "mobile": os.urandom(32)},
        os.urandom(32),
    )


def variant(entity: EntityInfo, encrypted: bool, storage: Storage) -> EntityInfo:
    fields = {
        name: dataclasses.replace(
            item,
            encrypted=item.encrypted and encrypted,
            index_column=item.index_column if encrypted else None,
            stored_as=storage,
        )
        for name, item in entity.fields.items()
    }
    table = table_spec(entity.table.name, entity.table.key, list(fields.values()))
    return dataclasses.replace(entity, fields=fields, table=table)


def stored_rows(ring: Keyring, entity: EntityInfo, plain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [dict(row) for row in plain]
    keys = row_keys(entity, [row[entity.table.key] for row in rows])
    for item in entity.fields.values():
        if not item.encrypted:
            continue
        cells = FieldCells(ring, entity, item)
        for row, key in zip(rows, keys, strict=True):
            value = row[item.column]
            if item.index_column is not None:
                row[item.index_column] = None if value is None else cells.index_value(value)
            row[item.column] = None if value is None else cells.encrypt(value, key)
    return rows


def time_release(ring: Keyring, catalog: Catalog, entity: EntityInfo, rows: list[dict[str, Any]]) -> list[float]:
    names = list(entity.fields)
    plan = Planner(catalog, ReleaseEverything).plan(
        Principal("bench", "audit", ("auditor",)), "audit", Selection({entity.id: frozenset(names)}, {})
    )
    releaser = Releaser(lambda: ring)
    samples = []
    for i in range(WARMUPS + SAMPLES):
        record = AccessRecord("bench", "audit", "audit", plan.policy_version)
        start = time.perf_counter()
        released = releaser.release(plan, record, entity, rows, names)
        elapsed = (time.perf_counter() - start) * 1000
        assert not released.unreadable, released.unreadable
        if i >= WARMUPS:
            samples.append(elapsed)
    return samples


def time_decrypt(ring: Keyring, entity: EntityInfo, rows: list[dict[str, Any]]) -> list[float]:
    """The decryption part alone: parse, decrypt and decode the encrypted columns."""
    columns = [(FieldCells(ring, entity, f), f.column) for f in entity.fields.values() if f.encrypted]
    samples = []
    for i in range(WARMUPS + SAMPLES):
        start = time.perf_counter()
        keys = row_keys(entity, [row[entity.table.key] for row in rows])
        for cells, column in columns:
            cells.decrypt([row[column] for row in rows], keys)
        elapsed = (time.perf_counter() - start) * 1000
        if i >= WARMUPS:
            samples.append(elapsed)
    return samples


def main() -> None:
    catalog = load_catalog(MANIFESTS)
    entity = catalog.entity(ENTITY)
    plain = generate(2026)["civil_affairs"]["ca_service_delivery"]
    while len(plain) < ROWS:
        plain = plain + plain
    plain = [dict(row, delivery_id=f"{row['delivery_id']}-{i}") for i, row in enumerate(plain[:ROWS])]
    encrypted_fields = [f.name for f in entity.fields.values() if f.encrypted]
    values = sum(1 for row in plain for f in entity.fields.values() if f.encrypted and row[f.column] is not None)
    ring = keyring()
    print(
        f"release step, {ROWS:,} rows x {len(entity.fields)} fields, encrypted and released plain: "
        f"{', '.join(encrypted_fields)} ({values:,} non-null values); median of {SAMPLES} after {WARMUPS} warm-ups"
    )
    print(f"{'variant':<34}{'median ms':>10}{'min':>8}{'max':>8}")
    results: dict[str, float] = {}
    for label, encrypted, storage in [
        ("plain columns", False, Storage.BINARY),
        ("encrypted, binary columns", True, Storage.BINARY),
        ("encrypted, text columns", True, Storage.TEXT),
    ]:
        shaped = variant(entity, encrypted, storage)
        rows = stored_rows(ring, shaped, plain)
        samples = time_release(ring, catalog, shaped, rows)
        results[label] = statistics.median(samples)
        print(f"{label:<34}{results[label]:>10.1f}{min(samples):>8.1f}{max(samples):>8.1f}")
        if encrypted:
            alone = time_decrypt(ring, shaped, rows)
            name = f"  of which decrypting {len(encrypted_fields)} columns"
            print(f"{name:<34}{statistics.median(alone):>10.1f}{min(alone):>8.1f}{max(alone):>8.1f}")
    base = results["plain columns"]
    for label in ("encrypted, binary columns", "encrypted, text columns"):
        print(f"cost of encryption ({label.split(', ')[1]}): {results[label] - base:.1f} ms per request")


if __name__ == "__main__":
    main()
