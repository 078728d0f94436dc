"""The catalog's typed lineage edges, and which of them a trace walks from an entity.

Pure: reads the catalog only. An edge is declared on the entity whose field holds the
reference (`source`); a trace may walk it forwards (from the holder to the record it names) or
backwards (from a record to the holders that name it). Which of the two a direction takes is
the kind's (`hub.catalog.lineage`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hub.catalog.lineage import KINDS
from hub.catalog.model import Catalog, EdgeInfo


class Direction(enum.Enum):
    UPSTREAM = "UPSTREAM"
    DOWNSTREAM = "DOWNSTREAM"
    BOTH = "BOTH"


@dataclass(frozen=True)
class Step:
    """One way out of an entity's records: along `edge`, forwards or backwards, to `to`."""

    edge: EdgeInfo
    forward: bool
    to: str  # the entity id reached

    @property
    def kind(self) -> str:
        return self.edge.kind


def typed_edges(catalog: Catalog) -> list[EdgeInfo]:
    """Every declared edge of the catalog, entity by entity in catalog order."""
    return [edge for entity in catalog for edge in entity.lineage]


def walks(kind: str, forward: bool, direction: Direction) -> bool:
    """Whether `direction` walks an edge of `kind` that way."""
    if direction is Direction.BOTH:
        return True
    downstream = KINDS[kind].downstream_forward == forward
    return downstream if direction is Direction.DOWNSTREAM else not downstream


def steps_from(
    catalog: Catalog, entity_id: str, direction: Direction, kinds: frozenset[str] | None = None
) -> list[Step]:
    """The steps a trace takes from records of `entity_id` (restricted to `kinds` if given)."""
    found: list[Step] = []
    for edge in typed_edges(catalog):
        if kinds is not None and edge.kind not in kinds:
            continue
        if edge.source == entity_id and walks(edge.kind, True, direction):
            found.extend(Step(edge, True, target) for target in edge.targets)
        if entity_id in edge.targets and walks(edge.kind, False, direction):
            found.append(Step(edge, False, edge.source))
    return found


def kinds_between(catalog: Catalog, source: str, target: str) -> list[str]:
    """The kinds a record of `source` may be linked to a record of `target` by, judged by the
    two entities' lineage roles (what a recorded link is checked against)."""
    s, t = catalog.entity(source).lineage_role, catalog.entity(target).lineage_role
    return [name for name, kind in KINDS.items() if kind.fits(s, t)]
