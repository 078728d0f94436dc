"""The demand mapping: which delivered services answer which category of citizens' requests.

Declared once, in the manifest of the department that takes the requests (the demo's hotline,
`demand:`), and checked here against the whole catalog at start-up, with messages naming the
file, the entity and the field: the requests' entity must be that manifest's citizen input with
the category and district fields named; every department named must share a service delivery
entity with the fields the accountability reports read (DELIVERY_FIELDS), and every basis field
must be one of that entity's fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.catalog.manifest import DemandDecl, LineageRole
from hub.catalog.model import Catalog, EntityInfo

# The fields of a service delivery entity the reports read, by name.
DELIVERY_FIELDS = ("requestId", "expenditureId", "serviceType", "districtCode", "deliveredAt", "amount")
# ... of the budget line, expenditure and feedback entities (one of each role in the catalog).
ROLE_FIELDS = {
    LineageRole.BUDGET_LINE: ("lineId", "department", "fiscalYear", "program", "amount"),
    LineageRole.EXPENDITURE: ("expenditureId", "budgetLineId", "department", "amount", "paidAt"),
    LineageRole.FEEDBACK: ("requestId", "satisfaction"),
}


class DemandError(ValueError):
    """The mapping is wrong; the message names the file, the entity and the field."""


@dataclass(frozen=True)
class Demand:
    """The checked mapping. `answers` maps a request category to the (department, service
    type) pairs that answer it; `deliveries` names each delivering department's entity."""

    requests: EntityInfo
    category: str
    district: str
    received: str
    deadline: str
    closed: str
    answers: dict[str, tuple[tuple[str, str], ...]]
    deliveries: dict[str, EntityInfo]
    bases: dict[str, str]
    # The budget line, expenditure and feedback entities.
    roles: dict[LineageRole, EntityInfo]

    def categories_of(self, department: str, service_type: str) -> tuple[str, ...]:
        """The categories a (department, service type) answers."""
        return tuple(c for c, pairs in self.answers.items() if (department, service_type) in pairs)

    def service_types(self, department: str) -> tuple[str, ...]:
        """The service types of `department` that answer some category."""
        found = {s for pairs in self.answers.values() for d, s in pairs if d == department}
        return tuple(sorted(found))


def check_demand(catalog: Catalog, source: str, department: str, decl: DemandDecl) -> Demand:
    where = f"{source}: demand"
    requests = catalog.entities.get(f"{department}.{decl.entity}")
    if requests is None:
        raise DemandError(f"{where}: entity {decl.entity} is not an entity of this manifest")
    if requests.lineage_role is not LineageRole.CITIZEN_INPUT:
        raise DemandError(f"{where}: entity {decl.entity} needs lineage_role citizen_input")
    for name in (decl.category, decl.district, decl.received, decl.deadline, decl.closed):
        if name not in requests.fields:
            raise DemandError(f"{where}: entity {decl.entity}, field {name}: not a field of {decl.entity}")
    deliveries: dict[str, EntityInfo] = {}
    answers: dict[str, list[tuple[str, str]]] = {}
    for index, answer in enumerate(decl.answers):
        at = f"{where}, answers[{index}]"
        entity = deliveries.get(answer.department) or _delivery_entity(catalog, at, answer.department)
        deliveries[answer.department] = entity
        pair = (answer.department, answer.service_type)
        listed = answers.setdefault(answer.category, [])
        if pair in listed:
            raise DemandError(f"{at}: category {answer.category} lists {answer.service_type} twice")
        listed.append(pair)
    for named, field_name in decl.bases.items():
        delivering = deliveries.get(named)
        if delivering is None:
            raise DemandError(f"{where}, bases: department {named} answers no category")
        if field_name not in delivering.fields:
            raise DemandError(f"{where}, bases: entity {delivering.id}, field {field_name}: not a field of it")
    roles = {role: _role_entity(catalog, where, role, names) for role, names in ROLE_FIELDS.items()}
    return Demand(
        requests,
        decl.category,
        decl.district,
        decl.received,
        decl.deadline,
        decl.closed,
        {c: tuple(pairs) for c, pairs in answers.items()},
        deliveries,
        dict(decl.bases),
        roles,
    )


def _role_entity(catalog: Catalog, where: str, role: LineageRole, names: tuple[str, ...]) -> EntityInfo:
    found = [e for e in catalog if e.lineage_role is role]
    if len(found) != 1:
        raise DemandError(
            f"{where}: the reports need one entity of lineage role {role.value}; {len(found)} are declared"
        )
    for name in names:
        if name not in found[0].fields:
            raise DemandError(
                f"{where}: entity {found[0].id}, field {name}: the reports need it, and it is not declared"
            )
    return found[0]


def _delivery_entity(catalog: Catalog, where: str, department: str) -> EntityInfo:
    if department not in catalog.departments:
        raise DemandError(f"{where}: department {department} is not declared")
    found = [e for e in catalog if e.department == department and e.lineage_role is LineageRole.SERVICE_DELIVERY]
    if len(found) != 1:
        raise DemandError(f"{where}: department {department} shares {len(found)} service delivery entities, not one")
    entity = found[0]
    for name in DELIVERY_FIELDS:
        if name not in entity.fields:
            raise DemandError(f"{where}: entity {entity.id}, field {name}: the reports need it, and it is not declared")
    return entity
