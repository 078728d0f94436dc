"""Encrypting a plain column of a department's table in place, beside the plain one.

The steps, each safe to stop anywhere and run again:

1. **Columns.** Add `<column>_enc` (the encrypted value) and, for a blind-indexed field,
   `<column>_bidx` with an index on it, nullable, beside the plain column. Columns and the index
   that exist already are left alone. A dry run prints this DDL and the row counts instead.
2. **Fill.** Rows whose `_enc` is NULL and whose plain value is not, in key order, a batch per
   transaction. Each row is written with a compare-and-set on its plain value and on `_enc`
   still being NULL, so a value the department's app changes meanwhile is not encrypted stale;
   such rows are taken again by a second pass. A run that stops leaves only whole batches
   behind; the next one continues with the rows still NULL.
3. **Verify.** Every row: `_enc` decrypts, for that row, to the plain value, and the index equals
   the index of the plain value; a NULL plain value has NULLs beside it. Mismatches are counted
   by kind. With `refill`, each mismatched row is encrypted again from its plain value (the
   plain column is the truth while it exists), with a compare-and-set on both columns.
4. **Drop** (only when asked, and only after a verification without a mismatch): the plain
   column and the indexes that include it.

Each value is bound to its row key (docs/stored-format.md): the entity key as text, or, where
the key field is itself encrypted, the hex of the key's blind index, which the rows are then
read by. Encrypting the key field itself binds each value to its own index; this is refused
while other fields of the entity are encrypted (their values are bound to the plain key, and
would all need re-encrypting under the new row key), and the plain key column is never dropped
while it is part of the table's primary key.

Afterwards the manifest must declare the field encrypted in its new column; `EncryptionPlan`
gives the lines to change.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.sql.writer import Change, Form, NewColumn, TableShape, TableWriter
from hub.catalog import EntityInfo, FieldInfo
from hub.catalog.manifest import FieldType, Storage
from hub.crypto.cells import FieldCells, index_bytes, row_key_text
from hub.crypto.fields import Failure
from hub.crypto.keyring import Keyring
from hub.maintenance.base import MaintenanceError, Progress, no_progress

# Passes of the fill over rows still NULL: a second takes rows whose plain value changed while
# the first encrypted them; more would chase an app that keeps rewriting the same rows.
FILL_PASSES = 3
INDEX_BYTES = 32


class Mismatch(enum.Enum):
    """What verification found wrong with a row."""

    MISSING = "plain value without an encrypted one"
    DIFFERS = "encrypted value decrypts to another value than the plain one"
    UNREADABLE = "encrypted value does not decrypt for its row"
    INDEX = "blind index missing or not the index of the plain value"
    STRAY = "encrypted value or index beside a NULL plain value"


@dataclass(frozen=True)
class EncryptionPlan:
    """Which columns an encryption reads and writes, and how values are bound to rows."""

    entity: EntityInfo
    plain: FieldInfo  # the field as the manifest declares it now
    target: FieldInfo  # the field as the manifest will declare it: encrypted, in its new column
    key_column: str  # the column rows are read by, in order
    own_index_is_key: bool  # the field is the entity's key: each value is bound to its own index

    @property
    def new_columns(self) -> list[NewColumn]:
        form = Form.BINARY if self.target.stored_as is Storage.BINARY else Form.TEXT
        columns = [NewColumn(self.target.column, form)]
        if self.target.index_column is not None:
            # 32 bytes, or 64 hex characters: bounded, so every database can index it.
            length = INDEX_BYTES if form is Form.BINARY else 2 * INDEX_BYTES
            columns.append(NewColumn(self.target.index_column, form, length))
        return columns

    def manifest_lines(self) -> list[str]:
        """What to change in the field's manifest entry once the column is encrypted."""
        lines = [f"column: {self.target.column}", "encrypted: true"]
        if self.target.blind_index is not None:
            lines += [f"blind_index: {self.target.blind_index}", f"index_column: {self.target.index_column}"]
        if self.target.stored_as is Storage.TEXT:
            lines.append("stored_as: text")
        return lines


def plan_encryption(
    entity: EntityInfo,
    field_name: str,
    *,
    domain: str | None = None,
    stored_as: Storage = Storage.BINARY,
    column: str | None = None,
    index_column: str | None = None,
) -> EncryptionPlan:
    """Check that the field can be encrypted in place, and name its new columns (by default
    `<column>_enc` and `<column>_bidx`)."""
    where = f"{entity.id}.{field_name}"
    plain = entity.fields.get(field_name)
    if plain is None:
        raise MaintenanceError(f"{entity.id} has no field {field_name} (fields: {', '.join(sorted(entity.fields))})")
    if plain.encrypted:
        raise MaintenanceError(
            f"{where} is already declared encrypted: encrypt-column works from the plain declaration, "
            "which changes only once the column is encrypted"
        )
    if plain.type not in (FieldType.STRING, FieldType.ID):
        raise MaintenanceError(f"{where} is {plain.type.value}: only String and ID fields can be encrypted")
    if index_column is not None and domain is None:
        raise MaintenanceError(f"{where}: an index column needs an index domain")
    is_key = field_name == entity.key
    if is_key:
        if domain is None:
            raise MaintenanceError(f"{where} is the key of {entity.id}: an encrypted key needs an index domain")
        others = sorted(f.name for f in entity.fields.values() if f.encrypted)
        if others:
            raise MaintenanceError(
                f"{where} is the key of {entity.id}, and {', '.join(others)} are already encrypted, bound to the "
                "plain key: encrypting the key would change every row key under them. Encrypt the key first."
            )
    encrypted_column = column or f"{plain.column}_enc"
    index = (index_column or f"{plain.column}_bidx") if domain else None
    taken = {f.column for f in entity.fields.values()} | {
        f.index_column for f in entity.fields.values() if f.index_column
    }
    for name in (encrypted_column, index):
        if name is not None and name in taken:
            raise MaintenanceError(f"{where}: column {name} is already a column of {entity.id} in its manifest")
    if encrypted_column == index:
        raise MaintenanceError(f"{where}: the encrypted value and the index need two columns")
    target = dataclasses.replace(
        plain,
        column=encrypted_column,
        encrypted=True,
        blind_index=domain,
        index_column=index,
        stored_as=stored_as,
        # As the manifest loader will read it back: a blind-index domain names the identifier.
        identifier=plain.identifier or (domain if domain in ("resident_id", "mobile") else None),
    )
    return EncryptionPlan(entity, plain, target, plain.column if is_key else entity.table.key, is_key)


@dataclass
class EncryptionReport:
    ddl: list[str] = field(default_factory=list)  # run, or in a dry run to be run
    rows: int = 0  # rows with a key
    to_fill: int = 0  # rows with a plain value and no encrypted one, at the start
    filled: int = 0
    refilled: int = 0  # mismatched rows encrypted again from their plain value
    mismatches: Counter[Mismatch] = field(default_factory=Counter)
    verified: int = 0
    dropped: bool = False
    already_dropped: bool = False  # the plain column was gone: an earlier run finished the job

    @property
    def ok(self) -> bool:
        # Rows the fill could not take (their plain value kept changing) are found again by
        # the verification, as missing.
        return not self.mismatches


async def encrypt_column(
    writer: TableWriter,
    plan: EncryptionPlan,
    keyring: Keyring | None,
    *,
    batch_size: int = 500,
    dry_run: bool = False,
    refill: bool = False,
    drop_plain: bool = False,
    progress: Progress = no_progress,
) -> EncryptionReport:
    """Run every step of the plan (a dry run only reports), and say what was done. `keyring` may
    be None for a dry run only."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = EncryptionReport()
    shape = await check_table(writer, plan, drop_plain=drop_plain)
    if shape is None:
        report.already_dropped = True
        return report
    plain, enc = plan.plain.column, plan.target.column
    report.ddl = _ddl(writer, plan, shape)
    report.rows = await writer.count(not_null=[plan.key_column])
    if dry_run:
        report.to_fill = await (
            writer.count(null=[enc], not_null=[plain]) if enc in shape.columns else writer.count(not_null=[plain])
        )
        if drop_plain:
            report.ddl.append(writer.drop_column_ddl(plain, shape))
        return report
    if keyring is None:
        raise ValueError("a keyring is needed to encrypt")
    await _add_columns(writer, plan, shape)
    cells = FieldCells(keyring, plan.entity, plan.target)
    report.to_fill = await writer.count(null=[enc], not_null=[plain])
    await _fill(writer, plan, cells, report, batch_size, progress)
    await _verify(writer, plan, cells, report, batch_size, refill, progress)
    if drop_plain and report.ok:
        shape = await writer.shape()
        report.ddl.append(writer.drop_column_ddl(plain, shape))
        await writer.drop_column(plain)
        report.dropped = True
    return report


async def check_table(writer: TableWriter, plan: EncryptionPlan, *, drop_plain: bool = False) -> TableShape | None:
    """The table as it is, once it is found fit for the plan (a `MaintenanceError` says why
    not); None where an earlier run finished, dropping the plain column."""
    if writer.key != plan.key_column:
        raise ValueError("the writer must read the table by the plan's key column")
    shape = await writer.shape()
    plain = plan.plain.column
    if plain not in shape.columns:
        if plan.target.column in shape.columns:
            return None
        raise MaintenanceError(f"the table {writer.table} has no column {plain}")
    if plan.key_column not in shape.columns:
        raise MaintenanceError(f"the table {writer.table} has no key column {plan.key_column}")
    if drop_plain and plain in shape.primary_key:
        raise MaintenanceError(
            f"{plain} is part of the primary key of {writer.table}, so --drop-plain would drop the key: make "
            f"another column the primary key (for example {plan.target.index_column}) first"
        )
    return shape


def _ddl(writer: TableWriter, plan: EncryptionPlan, shape: TableShape) -> list[str]:
    statements = [writer.add_column_ddl(c) for c in plan.new_columns if c.name not in shape.columns]
    index = plan.target.index_column
    if index is not None and not _indexed(shape, index):
        statements.append(writer.create_index_ddl(index, unique=plan.own_index_is_key))
    return statements


def _indexed(shape: TableShape, column: str) -> bool:
    return any(columns == (column,) for columns, _ in shape.indexes.values())


async def _add_columns(writer: TableWriter, plan: EncryptionPlan, shape: TableShape) -> None:
    for column in plan.new_columns:
        if column.name not in shape.columns:
            await writer.add_column(column)
    index = plan.target.index_column
    if index is not None and not _indexed(shape, index):
        # Unique where the index stands in for the key: two keys that normalise alike would
        # otherwise share a row key.
        await writer.create_index(index, unique=plan.own_index_is_key)


def _text(value: Any, where: str) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise MaintenanceError(f"{where} holds bytes, not text: it cannot be encrypted as a String field")
    return value if isinstance(value, str) else str(value)


def _cell_values(plan: EncryptionPlan, cells: FieldCells, key: Any, plain: Any) -> dict[str, Any]:
    """The encrypted value and index of one row's plain value, by column."""
    text = _text(plain, plan.plain.column)
    digest = cells.index.digest(text) if cells.index is not None else None
    row_key = digest.hex() if plan.own_index_is_key and digest is not None else row_key_text(plan.entity, key)
    values: dict[str, Any] = {plan.target.column: cells.encrypt(text, row_key)}
    if plan.target.index_column is not None and digest is not None:
        values[plan.target.index_column] = digest if plan.target.stored_as is Storage.BINARY else digest.hex()
    return values


async def _fill(
    writer: TableWriter,
    plan: EncryptionPlan,
    cells: FieldCells,
    report: EncryptionReport,
    batch_size: int,
    progress: Progress,
) -> None:
    plain, enc = plan.plain.column, plan.target.column
    label = f"encrypting {plan.entity.id}.{plan.plain.name}"
    progress(label, 0, report.to_fill)
    for _ in range(FILL_PASSES):
        after: Any = None
        lost = 0
        while True:
            rows = await writer.batch([plain], after=after, limit=batch_size, null=[enc], not_null=[plain])
            if not rows:
                break
            after = rows[-1][0]
            changes = [
                Change(key, _cell_values(plan, cells, key, value), {enc: None, plain: value}) for key, value in rows
            ]
            landed = await writer.update(changes)
            report.filled += len(landed)
            lost += len(changes) - len(landed)
            progress(label, report.filled, max(report.to_fill, report.filled))
        if not lost:
            break


async def _verify(
    writer: TableWriter,
    plan: EncryptionPlan,
    cells: FieldCells,
    report: EncryptionReport,
    batch_size: int,
    refill: bool,
    progress: Progress,
) -> None:
    plain, enc, index = plan.plain.column, plan.target.column, plan.target.index_column
    columns = [plain, enc] + ([index] if index else [])
    label = f"verifying {plan.entity.id}.{plan.plain.name}"
    progress(label, 0, report.rows)
    after: Any = None
    while True:
        rows = await writer.batch(columns, after=after, limit=batch_size)
        if not rows:
            break
        after = rows[-1][0]
        found = _check(plan, cells, rows)
        if refill and found:
            changes = [_refill(plan, cells, rows[i]) for i in found]
            landed = await writer.update(changes)
            report.refilled += len(landed)
            found = {i: kind for i, kind in found.items() if rows[i][0] not in landed}
        report.mismatches.update(found.values())
        report.verified += len(rows)
        progress(label, report.verified, max(report.rows, report.verified))


def _check(plan: EncryptionPlan, cells: FieldCells, rows: Sequence[tuple[Any, ...]]) -> dict[int, Mismatch]:
    """The rows of a batch (by position) that do not match, and how."""
    found: dict[int, Mismatch] = {}
    todo: list[int] = []
    texts: list[str] = []
    digests: list[bytes | None] = []
    row_keys: list[str] = []
    for i, row in enumerate(rows):
        key, value, stored = row[0], row[1], row[2]
        stored_index = row[3] if len(row) > 3 else None
        if value is None:
            if stored is not None or stored_index is not None:
                found[i] = Mismatch.STRAY
            continue
        if stored is None:
            found[i] = Mismatch.MISSING
            continue
        text = _text(value, plan.plain.column)
        digest = cells.index.digest(text) if cells.index is not None else None
        todo.append(i)
        texts.append(text)
        digests.append(digest)
        row_keys.append(
            digest.hex() if plan.own_index_is_key and digest is not None else row_key_text(plan.entity, key)
        )
    decrypted = cells.decrypt([rows[i][2] for i in todo], row_keys)
    for i, text, digest, result in zip(todo, texts, digests, decrypted, strict=True):
        if isinstance(result, Failure):
            found[i] = Mismatch.UNREADABLE
        elif result != text:
            found[i] = Mismatch.DIFFERS
        elif digest is not None and index_bytes(rows[i][3]) != digest:
            found[i] = Mismatch.INDEX
    return found


def _refill(plan: EncryptionPlan, cells: FieldCells, row: tuple[Any, ...]) -> Change:
    """A mismatched row encrypted again from its plain value, if neither changed since read."""
    key, value, stored = row[0], row[1], row[2]
    expect = {plan.plain.column: value, plan.target.column: stored}
    if value is None:
        values: dict[str, Any] = {plan.target.column: None}
        if plan.target.index_column is not None:
            values[plan.target.index_column] = None
        return Change(key, values, expect)
    return Change(key, _cell_values(plan, cells, key, value), expect)
