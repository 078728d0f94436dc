"""Truth-table files for `hub policy test`: expected decisions, checked against a policy.

A file is a YAML list of cases:

    - caller: {name: ca-app, department: civil_affairs, roles: [department_app], attributes: {}}
      purpose: social_assistance      # optional
      at: "2026-06-30T12:00:00+08:00"  # optional: when (grants have windows)
      field: population.Person.name    # or relation: population.Person.assistanceCases
      expect: PLAIN                    # PLAIN | MASKED | DENIED
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from hub.access.plan import Decision
from hub.auth.principal import Principal
from hub.catalog import Catalog
from hub.policy.decisions import SnapshotPolicy
from hub.policy.snapshot import Snapshot
from hub.policy.terms import Terms


class TruthTableError(Exception):
    """The file is not a truth table; the message names the case."""


@dataclass(frozen=True)
class Mismatch:
    number: int
    case: str
    expected: str
    got: str


def run_file(
    path: Path, snapshot: Snapshot, catalog: Catalog, terms: Terms | None = None
) -> tuple[int, list[Mismatch]]:
    """The cases and those the policy decides otherwise; with `terms`, grants breaking an
    invariant release nothing, as on a serving hub."""
    try:
        cases = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        raise TruthTableError(f"{path.name}: cannot be read as YAML") from None
    if not isinstance(cases, list):
        raise TruthTableError(f"{path.name}: a truth table is a list of cases")
    mismatches = [
        m for number, case in enumerate(cases, start=1) if (m := _check(number, case, snapshot, catalog, terms))
    ]
    return len(cases), mismatches


def _check(number: int, case: Any, snapshot: Snapshot, catalog: Catalog, terms: Terms | None) -> Mismatch | None:
    where = f"case {number}"
    try:
        caller = case["caller"]
        principal = Principal(
            str(caller["name"]),
            str(caller["department"]),
            tuple(str(r) for r in caller.get("roles", [])),
            {str(k): str(v) for k, v in (caller.get("attributes") or {}).items()},
        )
        expected = Decision(str(case["expect"]))
        at = datetime.fromisoformat(str(case["at"])) if "at" in case else datetime.now(UTC)
        if at.tzinfo is None:
            raise ValueError("`at` needs an offset")
        purpose = case.get("purpose")
        target = str(case.get("field") or case.get("relation") or "")
    except (KeyError, TypeError, ValueError, AttributeError):
        raise TruthTableError(f"{where}: needs caller {{name, department, roles}}, field or relation, expect") from None
    entity_id, _, name = target.rpartition(".")
    entity = catalog.entities.get(entity_id)
    if entity is None:
        raise TruthTableError(f"{where}: {target} does not name an entity's field or relation")
    policy = SnapshotPolicy(snapshot, catalog, clock=lambda: at, terms=terms)
    if "field" in case and name in entity.fields:
        got = policy.field(principal, purpose, entity, entity.fields[name]).decision
    elif "relation" in case and name in entity.relations:
        got = policy.relation(principal, purpose, entity.relations[name]).decision
    else:
        raise TruthTableError(f"{where}: {target} is not a field or relation of {entity_id}")
    if got is expected:
        return None
    label = f"{principal.subject} {target} purpose={purpose}"
    return Mismatch(number, label, expected.value, got.value)
