"""The lineage vocabulary: the kinds of typed edge and the roles each may join.

An edge runs from the record that holds the reference to the record it names (a delivery is
`funded_by` an expenditure). Which way is DOWNSTREAM (from the money towards the citizen)
depends on the kind: a budget line's expenditures point at it, so DOWNSTREAM walks
`allocated_from` backwards, while a delivery points at the request it answered, so DOWNSTREAM
walks `fulfils` forwards. The catalog checks every declared edge against this table at
start-up, and recorded links are checked against it when they are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.catalog.manifest import LineageRole

R = LineageRole


@dataclass(frozen=True)
class EdgeKind:
    name: str
    sources: frozenset[LineageRole]  # roles a `from` record may have
    targets: frozenset[LineageRole]  # roles a `to` record may have
    # True when DOWNSTREAM follows the edge from `from` to `to`; False when it goes back.
    downstream_forward: bool
    description: str

    def fits(self, source: LineageRole | None, target: LineageRole | None) -> bool:
        return source in self.sources and target in self.targets


def _kind(name: str, sources: set[R], targets: set[R], forward: bool, description: str) -> EdgeKind:
    return EdgeKind(name, frozenset(sources), frozenset(targets), forward, description)


KINDS: dict[str, EdgeKind] = {
    k.name: k
    for k in (
        _kind("allocated_from", {R.EXPENDITURE}, {R.BUDGET_LINE}, False, "an expenditure paid from a budget line"),
        _kind("funded_by", {R.SERVICE_DELIVERY}, {R.EXPENDITURE}, False, "a delivery paid by an expenditure"),
        _kind(
            "fulfils",
            {R.SERVICE_DELIVERY, R.ENTITLEMENT},
            {R.CITIZEN_INPUT},
            True,
            "a delivery or entitlement that answered a citizen's request",
        ),
        _kind(
            "delivered_under",
            {R.SERVICE_DELIVERY},
            {R.ENTITLEMENT},
            True,
            "a delivery paid under an entitlement (an assistance case, a student aid)",
        ),
        _kind(
            "feedback_on",
            {R.FEEDBACK},
            {R.SERVICE_DELIVERY, R.CITIZEN_INPUT},
            False,
            "feedback given on a delivery or a request",
        ),
        _kind("requested_by", {R.CITIZEN_INPUT}, {R.PERSON}, True, "a request made by a person"),
        _kind(
            "about_person",
            {R.SERVICE_DELIVERY, R.ENTITLEMENT},
            {R.PERSON},
            True,
            "a delivery or entitlement for a person",
        ),
    )
}
