"""The release step: turn fetched rows into what the caller may see, column by column.

Each column is decided once (from the plan), then copied, decrypted, masked or withheld as a
whole; the access record is filled in the same pass. An encrypted column is decrypted only when
it is released plain or must be masked: a withheld column is never fetched, let alone decrypted.

A large page is released in slices (`release_paced`, connectors/pacing.py): decrypting three
columns of 10,000 rows takes tens of milliseconds, which other requests would otherwise wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import UNREADABLE, Page, Row
from connectors.pacing import SLICE_ROWS, Steps, run_paced, run_steps, sliced
from hub.access.plan import AccessPlan, Decision
from hub.access.record import AccessRecord
from hub.catalog import EntityInfo
from hub.catalog.model import FieldInfo
from hub.crypto.cells import PERSON_DOMAIN, FieldCells, index_bytes, row_keys
from hub.crypto.fields import Failure
from hub.crypto.keyring import Keyring
from hub.crypto.masks import column_mask

log = logging.getLogger("hub.release")

# Keyed by field name; the reader may add the raw values relations join on under tuple keys,
# which no GraphQL field can name.
ReleasedRow = dict[Any, Any]


@dataclass
class Released:
    rows: list[ReleasedRow]
    # Fields withheld from this list, with why; the schema turns each into one error.
    withheld: dict[str, str] = field(default_factory=dict)
    # Fields released masked in this list, so an app can tell a masked value from data.
    masked: list[str] = field(default_factory=list)
    # Fields with values that failed to decrypt or to parse, and how many: null, reported as
    # DATA_INTEGRITY at the field.
    unreadable: dict[str, int] = field(default_factory=dict)
    # Rows left out because their key was null, did not parse or did not decrypt (a row without
    # its identity cannot be listed): how many, reported as one DATA_INTEGRITY error per list.
    left_out: int = 0
    # Where rows were left out: the indices in the fetched page of the rows kept, in order.
    kept: list[int] | None = None
    # Values that named a data-key version the keyring lacked (a rotation since it loaded).
    unknown_keys: int = 0
    # What the release counted in the access record, per field: taken back if it is redone.
    recorded: list[tuple[str, Decision]] = field(default_factory=list)


class Releaser:
    """Releases rows under a plan. `keyring` gives the current keyring (it may be reloaded
    between requests, never within one column)."""

    def __init__(self, keyring: Callable[[], Keyring]) -> None:
        self._keyring = keyring
        self._cells: dict[tuple[int, str, str], FieldCells] = {}

    def release(
        self,
        plan: AccessPlan,
        record: AccessRecord,
        entity: EntityInfo,
        rows: Page | Sequence[Row],
        names: Sequence[str],
    ) -> Released:
        """`rows` are keyed by column (a connector's page, read column-wise, or row dicts); the
        result's rows are dicts keyed by field name."""
        return run_steps(self._release(plan, record, entity, rows, names))

    async def release_paced(
        self, plan: AccessPlan, record: AccessRecord, entity: EntityInfo, rows: Page, names: Sequence[str]
    ) -> Released:
        """`release`, giving the event loop a turn between slices of a large page."""
        steps = self._release(plan, record, entity, rows, names)
        return run_steps(steps) if rows.count <= SLICE_ROWS else await run_paced(steps)

    def _release(
        self,
        plan: AccessPlan,
        record: AccessRecord,
        entity: EntityInfo,
        rows: Page | Sequence[Row],
        names: Sequence[str],
    ) -> Steps[Released]:
        page = rows if isinstance(rows, Page) else Page(list(rows))
        count = page.count
        unreadable = page.unreadable
        keyring = self._keyring()
        out: list[ReleasedRow] = [{} for _ in range(count)]
        released = Released(out)
        record.rows[entity.id] += count
        if count:
            self._record_persons(keyring, record, entity, page)
            yield
        keys: list[str] | None = None
        # The decrypted values of an encrypted key, where it is selected.
        clear_keys: Sequence[Any] | None = None
        decided: list[tuple[str, Decision]] = []
        # Read once for the loop: it runs for every selected column of every read.
        entity_id, items, column = entity.id, entity.fields, page.column
        for name in names:
            item = items[name]
            verdict = plan.field(entity_id, name)
            values: Sequence[Any]
            if verdict.decision is Decision.DENIED:
                values = [None] * count
                if count:
                    released.withheld[name] = verdict.reason or "not released to you"
            else:
                values = column(item.column)
                if item.encrypted and count:
                    if keys is None:
                        keys = row_keys(entity, page.column(entity.table.key))
                    # An UNREADABLE stored value fails to decrypt like any malformed one.
                    values = yield from self._decrypt(keyring, entity, item, values, keys, released)
                    if name == entity.key:
                        clear_keys = values
                elif item.column in unreadable:
                    values = _parsed(entity, item, values, released)
                if verdict.decision is Decision.MASKED:
                    # A field without a mask kind is never MASKED by the policy; nullify if so.
                    domain = item.blind_index or f"{entity.id}.{item.name}"
                    key = keyring.mask_key(domain, plan.principal.department)
                    if item.mask:
                        values = yield from sliced(column_mask(item.mask, key), list(values))
                    else:
                        values = [None] * count
                    if count:
                        released.masked.append(name)
            decided.append((name, verdict.decision))
            # Column by column into the row dicts: faster than a dict(zip(...)) per row.
            if count == 1:
                out[0][name] = values[0]
            else:
                for target, value in zip(out, values, strict=True):
                    target[name] = value
                yield
        if count:
            self._leave_out_keyless(entity, page, clear_keys, released)
            if released.left_out:
                record.rows[entity_id] -= released.left_out
                count -= released.left_out
        record.add_columns(entity_id, decided, count)
        released.recorded = decided
        return released

    @staticmethod
    def _leave_out_keyless(
        entity: EntityInfo, page: Page, clear_keys: Sequence[Any] | None, released: Released
    ) -> None:
        """Leaves out the rows whose stored key is null or unreadable, or whose encrypted key
        did not decrypt: the key is the one field that is never null, so such a row would
        otherwise null its whole list."""
        stored = page.column(entity.table.key)
        bad = {i for i, value in enumerate(stored) if value is None or value is UNREADABLE}
        if clear_keys is not None and entity.key in released.unreadable:
            bad.update(i for i, value in enumerate(clear_keys) if value is None)
            # Reported with the rows left out, not as a null key.
            del released.unreadable[entity.key]
        if not bad:
            return
        kept = [i for i in range(len(released.rows)) if i not in bad]
        released.rows = [released.rows[i] for i in kept]
        released.kept = kept
        released.left_out = len(bad)
        log.warning("%s: %d row(s) left out: their key is null or failed its integrity check", entity.id, len(bad))

    def _decrypt(
        self,
        keyring: Keyring,
        entity: EntityInfo,
        item: FieldInfo,
        values: Sequence[Any],
        keys: list[str],
        released: Released,
    ) -> Steps[list[Any]]:
        cells = self._cells_of(keyring, entity, item)
        plain: list[Any] = yield from sliced(cells.decrypt, values, keys)
        if Failure not in set(map(type, plain)):
            return plain  # the usual case, told without a test per value
        failed = 0
        kinds: set[str] = set()
        for i, value in enumerate(plain):
            if isinstance(value, Failure):
                failed += 1
                kinds.add(value.name)
                if value is Failure.UNKNOWN_KEY:
                    released.unknown_keys += 1
                # Never wrong data: a value that is not this cell's becomes null.
                plain[i] = None
        if failed:
            released.unreadable[item.name] = failed
            # For the operator: which cells, never which values (there are none to show).
            log.warning(
                "%s.%s: %d value(s) failed to decrypt (%s)", entity.id, item.name, failed, ", ".join(sorted(kinds))
            )
        return plain

    def _cells_of(self, keyring: Keyring, entity: EntityInfo, item: FieldInfo) -> FieldCells:
        name = (id(keyring), entity.id, item.name)
        cells = self._cells.get(name)
        if cells is None:
            if len(self._cells) > 4096:
                self._cells.clear()  # keyrings replaced by reloads leave their entries behind
            cells = self._cells[name] = FieldCells(keyring, entity, item)
        return cells

    @staticmethod
    def _record_persons(keyring: Keyring, record: AccessRecord, entity: EntityInfo, page: Page) -> None:
        # Every row released touches its person, selected or not (the reader always fetches
        # the person column, or its blind index); the record keeps the index, never the number.
        for item in entity.fields.values():
            if not item.person:
                continue
            touched = record.touched(entity.id)
            if item.index_column is not None and page.has(item.index_column):
                stored = page.column(item.index_column)
                if set(map(type, stored)) <= _BYTES_OR_NULL:
                    touched.update([value.hex() for value in stored if value is not None])
                else:
                    found = (index_bytes(value) for value in stored)
                    touched.update(value.hex() for value in found if value is not None)
            elif not item.encrypted and page.has(item.column):
                index = keyring.blind_index(item.blind_index or PERSON_DOMAIN)
                touched.update(
                    index.hex(str(value))
                    for value in page.column(item.column)
                    if value is not None and value is not UNREADABLE
                )


_BYTES_OR_NULL = frozenset({bytes, type(None)})


def _parsed(entity: EntityInfo, item: FieldInfo, values: Sequence[Any], released: Released) -> list[Any]:
    """A column the connector could not read every value of: those values null, and counted."""
    out = [None if value is UNREADABLE else value for value in values]
    failed = sum(1 for value in values if value is UNREADABLE)
    if failed:
        released.unreadable[item.name] = released.unreadable.get(item.name, 0) + failed
        log.warning("%s.%s: %d stored value(s) are not of the field's type", entity.id, item.name, failed)
    return out
