"""Whether this hub's keys open the values a department's encrypted columns already hold.

A manifest copied from another hub (the demo's, say) declares columns encrypted under keys
this hub does not hold. Without this check the hub would start, make fresh data keys for those
departments, and answer DATA_INTEGRITY on every encrypted field. At start-up the hub reads a
few stored values per encrypted column: a department without a data key whose columns already
hold values stops the start before any key is made (a new key could never open them); a column
none of whose sampled values opens stops it after the keys are loaded. Either is one line
naming the department, the field and the key version, pointing to `hub keys restore`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import Connector, ConnectorError, IsNull, Query
from hub.catalog import Catalog, EntityInfo, FieldInfo
from hub.crypto.cells import FieldCells, row_keys
from hub.crypto.errors import CryptoError
from hub.crypto.fields import Failure, key_version
from hub.crypto.keyring import Keyring

log = logging.getLogger("hub.crypto")

# Values read per encrypted column: one that opens is enough; a few spare the check from a
# single damaged row.
SAMPLE = 5


class KeysDoNotOpen(CryptoError):
    """The department's stored values were written under keys this hub does not hold."""


@dataclass(frozen=True)
class Sample:
    entity: EntityInfo
    field: FieldInfo
    keys: list[str]
    values: list[Any]

    @property
    def version(self) -> int | None:
        return next((v for v in map(key_version, self.values) if v is not None), None)


async def samples(catalog: Catalog, department: str, connector: Connector) -> list[Sample] | None:
    """Up to SAMPLE stored values of each encrypted field of `department`, with their row keys;
    fields with no value yet are left out. None when the department cannot be read (unreachable,
    or its schema does not match): its reads meet that themselves."""
    out = []
    for entity_id in catalog.departments[department].entities:
        entity = catalog.entity(entity_id)
        for item in entity.fields.values():
            if not item.encrypted:
                continue
            key = entity.table.key
            query = Query(entity.table, (key, item.column), IsNull(item.column, False), limit=SAMPLE)
            try:
                page = await connector.fetch(query)
            except ConnectorError as error:
                log.warning("department %s: stored values not checked (%s)", department, type(error).__name__)
                return None
            if page.count:
                keys = row_keys(entity, list(page.column(key)))
                out.append(Sample(entity, item, keys, list(page.column(item.column))))
    return out


def refuse_values_without_key(department: str, found: Sequence[Sample]) -> None:
    """Stop when `department`, which has no data key here, already holds encrypted values."""
    if found:
        first = found[0]
        raise KeysDoNotOpen(
            f"department {department}: field {first.entity.name}.{first.field.name} already holds values encrypted "
            f"under data key version {first.version}, and this hub holds no data key for {department}; "
            "it will not make one that cannot open them: restore the keys with `hub keys restore`"
        )


def refuse_unopened(keyring: Keyring, department: str, found: Sequence[Sample]) -> None:
    """Stop when none of a field's sampled values opens with this hub's keys."""
    for sample in found:
        opened = FieldCells(keyring, sample.entity, sample.field).decrypt(sample.values, sample.keys)
        if any(isinstance(value, str) for value in opened):
            continue
        why = next((value for value in opened if isinstance(value, Failure)), Failure.MALFORMED)
        raise KeysDoNotOpen(
            f"department {department}: no stored value of field {sample.entity.name}.{sample.field.name} opens "
            f"with this hub's data key version {sample.version} ({why.value}): the values were written under other "
            "keys; restore them with `hub keys restore`"
        )


async def check_departments(
    catalog: Catalog, connectors: Mapping[str, Connector], keyless: Sequence[str]
) -> dict[str, list[Sample] | None]:
    """Each department's samples (None: not read), having refused those in `keyless` that
    already hold values."""
    found: dict[str, list[Sample] | None] = {}
    for name in sorted(catalog.departments):
        connector = connectors.get(name)
        if connector is None:
            continue
        sampled = found[name] = await samples(catalog, name, connector)
        if name in keyless and sampled:
            refuse_values_without_key(name, sampled)
    return found
