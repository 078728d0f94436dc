"""A trace as W3C PROV-JSON, written with the `prov` package.

Each record is a PROV entity named by its reference at the caller's level (`hub:` namespace;
a sealed reference stays sealed); each typed edge is a derivation (`wasDerivedFrom`) from the
record referred to towards the record holding the reference, with the kind and whether it was
recorded through the hub as attributes. Hidden ends have no entity: such edges are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from prov.model import ProvDocument

NAMESPACE = "https://hub.example.gov/lineage#"


class NodeView(Protocol):
    id: str
    ref: str | None
    entity: str
    depth: int


def prov_json(source: tuple[Any, Sequence[NodeView]]) -> str:
    """The PROV-JSON of a trace; `source` is (the trace, its nodes as the caller sees them)."""
    trace, nodes = source
    return str(document(nodes, trace.edges).serialize(format="json"))


def document(nodes: Sequence[NodeView], edges: Sequence[Any]) -> ProvDocument:
    doc = ProvDocument()
    doc.add_namespace("hub", NAMESPACE)
    names: dict[str, Any] = {}
    for node in nodes:
        identifier = f"hub:{node.id}"
        names[node.id] = doc.entity(
            identifier,
            {
                "prov:type": f"hub:{node.entity}",
                "hub:ref": node.ref or "",
                "hub:depth": node.depth,
            },
        )
    for edge in edges:
        if edge.hidden or edge.source not in names or edge.target not in names:
            continue
        # The holder of a reference derives from what it refers to (a delivery from its funding).
        doc.wasDerivedFrom(
            names[edge.source],
            names[edge.target],
            other_attributes={"hub:kind": edge.kind, "hub:recorded": bool(edge.recorded)},
        )
    return doc
