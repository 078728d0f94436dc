"""The access record of one request: what was released, at which level, and whom it touched.

Produced by the release step while it processes columns (never by a second pass over rows);
the audit trail stores it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hub.access.plan import Decision


@dataclass
class AccessRecord:
    subject: str
    department: str
    purpose: str | None
    policy_version: str
    # (entity id, field, decision) -> how many values were released so.
    released: Counter[tuple[str, str, Decision]] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    # Persons touched, by the hex blind index of their resident ID number (never the number).
    persons: set[str] = field(default_factory=set)
    # Aggregates: (entity id, field) of every group key and measure, and the groups suppressed.
    aggregated: set[tuple[str, str]] = field(default_factory=set)
    suppressed_groups: int = 0
    # Entities aggregated at all (a bare count names no field, yet answers about the rows).
    aggregated_entities: set[str] = field(default_factory=set)
    # Lineage links this request recorded or retracted: [operation, link id, row hash], so the
    # trail holds every recording (hub/lineage/links.py).
    links: list[list[Any]] = field(default_factory=list)

    def add_aggregate(self, entity_id: str, fields: Iterable[str], suppressed: int) -> None:
        self.aggregated_entities.add(entity_id)
        self.aggregated.update((entity_id, name) for name in fields)
        self.suppressed_groups += suppressed

    def add_columns(self, entity_id: str, columns: Iterable[tuple[str, Decision]], count: int) -> None:
        """Count `count` values released of each (field, decision) of one read."""
        if count:
            released = self.released
            # get-and-set rather than `+=`: Counter's missing-key hook is a Python call.
            for name, decision in columns:
                key = (entity_id, name, decision)
                released[key] = released.get(key, 0) + count

    def undo_columns(self, entity_id: str, columns: Iterable[tuple[str, Decision]], count: int) -> None:
        """Take back one read's `add_columns` (and its rows), for a release that is done again."""
        self.rows[entity_id] -= count
        if not count:
            return
        released = self.released
        for name, decision in columns:
            key = (entity_id, name, decision)
            left = released.get(key, 0) - count
            if left > 0:
                released[key] = left
            else:
                released.pop(key, None)

    def summary(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "department": self.department,
            "purpose": self.purpose,
            "policyVersion": self.policy_version,
            "rows": dict(self.rows),
            "released": [
                {"entity": e, "field": f, "level": d.value, "count": n}
                for (e, f, d), n in sorted(self.released.items(), key=lambda i: (i[0][0], i[0][1], i[0][2].value))
            ],
            "personsTouched": len(self.persons),
            **(
                {
                    "aggregated": [f"{e}.{f}" for e, f in sorted(self.aggregated)],
                    "suppressedGroups": self.suppressed_groups,
                }
                if self.aggregated or self.suppressed_groups
                else {}
            ),
        }
