"""Lineage edge declarations: checked at start-up, with the file, entity, edge and field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.catalog import ManifestError, load_catalog
from hub.catalog.manifest import RefValues
from hub.demo.catalog import demo_catalog

MONEY = """
department: money
connection: {sqlite_path: money.db}
entities:
  - name: Line
    table: line
    key: lineId
    lineage_role: budget_line
    fields:
      - {name: lineId, type: ID}
  - name: Payment
    table: payment
    key: paymentId
    lineage_role: expenditure
    fields:
      - {name: paymentId, type: ID}
      - {name: lineId, type: ID}
      - {name: amount, type: Decimal}
    lineage:
      - EDGE
"""


def load_with(tmp_path: Path, edge: str) -> str:
    (tmp_path / "money.yaml").write_text(MONEY.replace("EDGE", edge), encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_catalog(tmp_path)
    return str(caught.value)


def test_a_declared_edge_is_in_the_catalog(tmp_path: Path) -> None:
    (tmp_path / "money.yaml").write_text(
        MONEY.replace("EDGE", "{kind: allocated_from, field: lineId, to: Line}"), encoding="utf-8"
    )
    edge = load_catalog(tmp_path).entity("money.Payment").lineage[0]
    assert (edge.kind, edge.field, edge.targets, edge.target_field) == (
        "allocated_from",
        "lineId",
        ("money.Line",),
        "lineId",
    )


def test_an_unknown_kind_is_named_with_file_entity_and_field(tmp_path: Path) -> None:
    message = load_with(tmp_path, "{kind: paid_by, field: lineId, to: Line}")
    assert message.startswith("money.yaml: entity Payment, lineage edge #1 (paid_by), field lineId: unknown kind")


def test_an_edge_on_a_missing_field_is_refused(tmp_path: Path) -> None:
    message = load_with(tmp_path, "{kind: allocated_from, field: budgetId, to: Line}")
    assert "money.yaml: entity Payment" in message and "budgetId is not a field of Payment" in message


def test_an_edge_to_an_unknown_entity_is_refused(tmp_path: Path) -> None:
    assert "target Ledger is not a declared entity" in load_with(
        tmp_path, "{kind: allocated_from, field: lineId, to: Ledger}"
    )


def test_a_kind_that_does_not_fit_the_roles_is_refused(tmp_path: Path) -> None:
    message = load_with(tmp_path, "{kind: funded_by, field: lineId, to: Line}")
    assert "Payment has lineage role expenditure; funded_by starts from service_delivery" in message


def test_a_target_of_the_wrong_role_is_refused(tmp_path: Path) -> None:
    message = load_with(tmp_path, "{kind: allocated_from, field: lineId, to: Payment}")
    assert "target money.Payment has lineage role expenditure; allocated_from points at budget_line" in message


def test_fields_of_different_types_cannot_be_an_edge(tmp_path: Path) -> None:
    message = load_with(tmp_path, "{kind: allocated_from, field: amount, to: Line}")
    assert "field amount and target field lineId have different types" in message


def test_an_edge_without_target_needs_global_references(tmp_path: Path) -> None:
    message = load_with(tmp_path, "{kind: allocated_from, field: lineId}")
    assert "money.yaml: entity Payment, lineage edge #1 (allocated_from)" in message and "`to`" in message


def test_the_demo_declares_the_money_request_and_person_edges() -> None:
    catalog = demo_catalog()
    declared = {(e.id, edge.kind, edge.field) for e in catalog for edge in e.lineage}
    assert {
        ("finance.Expenditure", "allocated_from", "budgetLineId"),
        ("civil_affairs.ServiceDelivery", "funded_by", "expenditureId"),
        ("human_resources.ServiceDelivery", "fulfils", "requestId"),
        ("education.ServiceDelivery", "about_person", "idNumber"),
        ("hotline.Request", "requested_by", "callerIdNumber"),
        ("hotline.Feedback", "feedback_on", "requestId"),
        ("hotline.Feedback", "feedback_on", "deliveryRef"),
    } <= declared
    by_ref = next(edge for edge in catalog.entity("hotline.Feedback").lineage if edge.field == "deliveryRef")
    assert by_ref.values is RefValues.GLOBAL_REF
    assert "civil_affairs.ServiceDelivery" in by_ref.targets and "finance.Expenditure" not in by_ref.targets
