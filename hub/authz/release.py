"""The release step: turn fetched rows into what the caller may see, column by column.

Each column is decided once (from the plan), then copied, masked or withheld as a whole; the
access record is filled in the same pass.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Row
from hub.authz.masks import column_mask
from hub.authz.plan import AccessPlan, Decision
from hub.authz.record import AccessRecord, PersonIndex
from hub.catalog import EntityInfo

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


@dataclass
class Releaser:
    person_index: PersonIndex
    hash_key: bytes

    def release(
        self,
        plan: AccessPlan,
        record: AccessRecord,
        entity: EntityInfo,
        rows: Sequence[Row],
        names: Sequence[str],
    ) -> Released:
        """`rows` are keyed by column; the result is keyed by field name."""
        count = len(rows)
        out: list[ReleasedRow] = [{} for _ in range(count)]
        withheld: dict[str, str] = {}
        masked: list[str] = []
        record.rows[entity.id] += count
        # Every row released touches its person, selected or not (the reader always fetches
        # the person column); the record keeps an index of the number, never the number.
        for item in entity.fields.values():
            if item.person and count and item.column in rows[0]:
                record.add_persons(self.person_index, [row[item.column] for row in rows])
        for name in names:
            item = entity.fields[name]
            verdict = plan.field(entity.id, name)
            if verdict.decision is Decision.DENIED:
                values: list[object] = [None] * count
                if count:
                    withheld[name] = verdict.reason or "not released to you"
            else:
                values = [row[item.column] for row in rows]
                if verdict.decision is Decision.MASKED:
                    # A field without a mask kind is never MASKED by the policy; nullify if so.
                    key = self._hash_key(plan.principal.department, item.blind_index or f"{entity.id}.{item.name}")
                    values = column_mask(item.mask, key)(values) if item.mask else [None] * count
                    if count:
                        masked.append(name)
            record.add_column(entity.id, name, verdict.decision, count)
            for target, value in zip(out, values, strict=True):
                target[name] = value
        return Released(out, withheld, masked)

    def _hash_key(self, receiver: str, domain: str) -> bytes:
        # Per (domain, receiving department): equal values match within one department's view,
        # and two departments cannot link persons through their hashed values.
        return hmac.new(self.hash_key, f"{domain}|{receiver}".encode(), hashlib.sha256).digest()
