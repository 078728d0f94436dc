"""Re-encrypting a department's encrypted columns under its current data-key version.

After a rotation (`hub keys rotate`) new values are written under the new version, and old ones
still decrypt, since every value names its version. Re-encryption moves the old ones, while the
hub and the department's apps keep reading and writing:

- each encrypted field of each entity is read in key order, a batch at a time; values already
  under the current version are left alone (the version is in the value's header, so no
  decryption is spent on them);
- the others are decrypted for their row and encrypted again under the current version, in
  the field's stored form (binary or text), and written with a compare-and-set on the value
  read: a value an app changed meanwhile is never overwritten. Those rows are read again and
  retried (a bounded number of times); one the app wrote under the current version is done;
- a value that does not decrypt (altered, moved from another row, plain text left in the
  column, or under a version this hub does not hold) is counted and left as it is: overwriting
  it would destroy the only evidence of what happened;
- every batch is its own transaction, and a re-run skips what is done: killed at any moment,
  the job is finished by running it again. A census (the dry run) counts values per version.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL

from connectors.sql.writer import Change, TableWriter
from hub.catalog import EntityInfo, FieldInfo
from hub.catalog.manifest import Tier
from hub.crypto.cells import FieldCells, row_keys
from hub.crypto.fields import Failure, key_version
from hub.crypto.keyring import Keyring
from hub.maintenance.base import MaintenanceError, Progress, no_progress

# Attempts at a row whose value keeps changing under the compare-and-set before it is left for
# the next run (each attempt reads the row again).
RETRIES = 5
# Row keys of unreadable values kept for the report.
EXAMPLES = 5


Fields = list[tuple[EntityInfo, FieldInfo]]


def encrypted_fields(entities: Iterable[EntityInfo], only: Sequence[str] = ()) -> Fields:
    """Every encrypted field of these entities in a stable order, or only those named
    `Entity.field` in `only`."""
    found = [
        (entity, item)
        for entity in sorted(entities, key=lambda e: e.id)
        for item in entity.fields.values()
        if item.encrypted
    ]
    if not only:
        return found
    names = {f"{entity.name}.{item.name}": (entity, item) for entity, item in found}
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise MaintenanceError(
            f"not encrypted fields: {', '.join(unknown)} (encrypted: {', '.join(sorted(names)) or 'none'})"
        )
    return [pair for name, pair in names.items() if name in only]


async def census_fields(url: str | URL, fields: Fields, batch_size: int = 1000) -> list[Census]:
    """The census of each field, through a writer on `url` (it only reads)."""
    found = []
    for entity, item in fields:
        writer = TableWriter(url, entity.table.name, entity.table.key)
        try:
            found.append(await census(writer, entity, item, batch_size))
        finally:
            await writer.close()
    return found


async def reencrypt_fields(
    url: str | URL, keyring: Keyring, fields: Fields, *, batch_size: int = 500, progress: Progress = no_progress
) -> list[FieldReport]:
    """Re-encrypt each field in turn, through a writer on `url`."""
    reports = []
    for entity, item in fields:
        writer = TableWriter(url, entity.table.name, entity.table.key)
        try:
            reports.append(
                await reencrypt_field(writer, keyring, entity, item, batch_size=batch_size, progress=progress)
            )
        finally:
            await writer.close()
    return reports


@dataclass
class Census:
    """The values of one field by data-key version, without decrypting anything."""

    entity: str
    field: str
    versions: Counter[int] = dataclasses.field(default_factory=Counter)
    malformed: int = 0  # not a stored value (plain text left in the column, say)
    rows: int = 0  # rows with a key


@dataclass
class FieldReport:
    entity: str
    field: str
    current: int  # the version values were moved to
    reencrypted: int = 0
    up_to_date: int = 0  # already under the current version (or written so meanwhile)
    newer: int = 0  # under a version newer than this run's keyring: a rotation since it started
    changed_meanwhile: int = 0  # compare-and-sets lost to a concurrent write (and retried)
    left: int = 0  # given up on after RETRIES: still changing; run again
    failures: Counter[Failure] = dataclasses.field(default_factory=Counter)
    # Row keys of some failures, where keys are not personal data (an ID number, say).
    examples: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.left and not self.newer


async def census(writer: TableWriter, entity: EntityInfo, item: FieldInfo, batch_size: int = 1000) -> Census:
    found = Census(entity.id, item.name, rows=await writer.count())
    after: Any = None
    while True:
        rows = await writer.batch([item.column], after=after, limit=batch_size, not_null=[item.column])
        if not rows:
            return found
        after = rows[-1][0]
        for _, value in rows:
            version = key_version(value)
            if version is None:
                found.malformed += 1
            else:
                found.versions[version] += 1


async def reencrypt_field(
    writer: TableWriter,
    keyring: Keyring,
    entity: EntityInfo,
    item: FieldInfo,
    *,
    batch_size: int = 500,
    progress: Progress = no_progress,
) -> FieldReport:
    """Move every value of one field to the department's current data-key version."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if writer.key != entity.table.key:
        raise ValueError("the writer must read the table by the entity's key column")
    shape = await writer.shape()
    for column in (entity.table.key, item.column):
        if column not in shape.columns:
            raise MaintenanceError(f"the table {writer.table} of {entity.id} has no column {column}")
    cells = FieldCells(keyring, entity, item)
    report = FieldReport(entity.id, item.name, keyring.current_version(entity.department))
    label = f"re-encrypting {entity.id}.{item.name}"
    total = await writer.count(not_null=[item.column])
    done = 0
    progress(label, 0, total)
    after: Any = None
    while True:
        rows = await writer.batch([item.column], after=after, limit=batch_size, not_null=[item.column])
        if not rows:
            break
        after = rows[-1][0]
        await _move(writer, cells, entity, item, report, {key: value for key, value in rows})
        done += len(rows)
        progress(label, done, max(total, done))
    return report


async def _move(
    writer: TableWriter,
    cells: FieldCells,
    entity: EntityInfo,
    item: FieldInfo,
    report: FieldReport,
    values: Mapping[Any, Any],
) -> None:
    """Re-encrypt the old values of one batch, reading again and retrying those that changed."""
    pending = dict(values)
    for attempt in range(RETRIES + 1):
        changes = _changes(cells, entity, item, report, pending)
        if not changes:
            return
        landed = await writer.update(changes)
        report.reencrypted += len(landed)
        lost = [c.key for c in changes if c.key not in landed]
        if not lost:
            return
        report.changed_meanwhile += len(lost)
        if attempt == RETRIES:
            report.left += len(lost)
            return
        # Deleted rows and values set to NULL meanwhile need nothing more.
        pending = {key: row[0] for key, row in (await writer.fetch(lost, [item.column])).items() if row[0] is not None}


def _changes(
    cells: FieldCells, entity: EntityInfo, item: FieldInfo, report: FieldReport, values: Mapping[Any, Any]
) -> list[Change]:
    """The changes that move `values` to the current version; counts the values that need none."""
    old: list[tuple[Any, Any]] = []
    for key, value in values.items():
        version = key_version(value)
        if version is None:
            _failed(report, Failure.MALFORMED, entity, key)
        elif version == report.current:
            report.up_to_date += 1
        elif version > report.current:
            report.newer += 1
        else:
            old.append((key, value))
    if not old:
        return []
    keys = row_keys(entity, [key for key, _ in old])
    plain = cells.decrypt([value for _, value in old], keys)
    changes = []
    for (key, value), row_key, text in zip(old, keys, plain, strict=True):
        if isinstance(text, Failure) or text is None:
            _failed(report, text or Failure.MALFORMED, entity, key)
            continue
        changes.append(Change(key, {item.column: cells.encrypt(text, row_key)}, {item.column: value}))
    return changes


def _failed(report: FieldReport, failure: Failure, entity: EntityInfo, key: Any) -> None:
    report.failures[failure] += 1
    if len(report.examples) < EXAMPLES and _shown(entity.fields[entity.key]):
        report.examples.append(row_keys(entity, [key])[0])


def _shown(key: FieldInfo) -> bool:
    """Whether row keys may be named in a report: not where they are personal data themselves."""
    return not key.encrypted and not key.person and key.tier in (Tier.L1, Tier.L2)
