"""The access record of one request: what was released, at which level, and whom it touched.

Produced by the release step while it processes columns (never by a second pass over rows);
the audit trail stores it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hub.authz.plan import Decision

# Turns a resident ID number into the token the record keeps (a keyed index, never the number).
PersonIndex = Callable[[str], str]


@dataclass
class AccessRecord:
    subject: str
    department: str
    purpose: str | None
    policy_version: str
    # (entity id, field, decision) -> how many values were released so.
    released: Counter[tuple[str, str, Decision]] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    persons: set[str] = field(default_factory=set)

    def add_column(self, entity_id: str, name: str, decision: Decision, count: int) -> None:
        if count:
            self.released[(entity_id, name, decision)] += count

    def add_persons(self, index: PersonIndex, values: Iterable[Any]) -> None:
        self.persons.update(index(str(v).upper()) for v in values if v is not None)

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
        }
