"""The hotline manifest's demand mapping: loaded from the demo manifests, agreeing with the
generator's data, and refused at start-up with a message naming the file, entity and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from hub.catalog import ManifestError, load_catalog
from hub.demo.generate import generate

MANIFESTS = Path(__file__).resolve().parents[3] / "hub" / "demo" / "manifests"


def copy(tmp_path: Path) -> Path:
    folder = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, folder)
    return folder


def edit_demand(folder: Path, change: dict[str, object]) -> None:
    path = folder / "hotline.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["demand"].update(change)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


def error_of(folder: Path) -> str:
    with pytest.raises(ManifestError) as caught:
        load_catalog(folder)
    return str(caught.value)


def test_every_delivery_that_answers_a_request_is_of_a_service_type_its_category_maps_to() -> None:
    demand = load_catalog(MANIFESTS).demand
    assert demand is not None
    data = generate()
    category = {r["request_id"]: r["category"] for r in data["hotline"]["hl_request"]}
    tables = {"civil_affairs": "ca_service_delivery", "human_resources": "hr_service_delivery"}
    tables["education"] = "edu_service_delivery"
    answered = 0
    for department, table in tables.items():
        for row in data[department][table]:
            if row["request_id"] is not None:
                answered += 1
                assert (department, row["service_type"]) in demand.answers[category[row["request_id"]]]
    assert answered > 1000


def test_an_unknown_department_is_named(tmp_path: Path) -> None:
    folder = copy(tmp_path)
    edit_demand(folder, {"answers": [{"category": "住房", "department": "housing", "service_type": "租赁补贴"}]})
    assert error_of(folder) == "hotline.yaml: demand, answers[0]: department housing is not declared"


def test_an_unknown_field_of_the_requests_is_named(tmp_path: Path) -> None:
    folder = copy(tmp_path)
    edit_demand(folder, {"district": "regionCode"})
    assert error_of(folder) == "hotline.yaml: demand: entity Request, field regionCode: not a field of Request"


def test_a_basis_field_the_delivery_lacks_is_named(tmp_path: Path) -> None:
    folder = copy(tmp_path)
    edit_demand(folder, {"bases": {"civil_affairs": "permitId"}})
    message = error_of(folder)
    assert (
        message
        == "hotline.yaml: demand, bases: entity civil_affairs.ServiceDelivery, field permitId: not a field of it"
    )


def test_a_department_without_the_fields_the_reports_read_is_refused(tmp_path: Path) -> None:
    folder = copy(tmp_path)
    path = folder / "education.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    delivery = next(e for e in raw["entities"] if e["name"] == "ServiceDelivery")
    delivery["fields"] = [f for f in delivery["fields"] if f["name"] != "expenditureId"]
    delivery["relations"] = [r for r in delivery.get("relations", []) if r["field"] != "expenditureId"]
    delivery["lineage"] = [e for e in delivery.get("lineage", []) if e["field"] != "expenditureId"]
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    for other in ("finance.yaml",):
        text = (folder / other).read_text(encoding="utf-8")
        raw_other = yaml.safe_load(text)
        for entity in raw_other["entities"]:
            entity["relations"] = [r for r in entity.get("relations", []) if r["target"] != "education.ServiceDelivery"]
        (folder / other).write_text(yaml.safe_dump(raw_other, allow_unicode=True), encoding="utf-8")
    hotline = yaml.safe_load((folder / "hotline.yaml").read_text(encoding="utf-8"))
    assert hotline["demand"]
    message = error_of(folder)
    assert "answers[5]: entity education.ServiceDelivery, field expenditureId: the reports need it" in message


def test_the_requests_entity_must_be_a_citizen_input(tmp_path: Path) -> None:
    folder = copy(tmp_path)
    edit_demand(folder, {"entity": "Feedback"})
    assert error_of(folder) == "hotline.yaml: demand: entity Feedback needs lineage_role citizen_input"


def test_an_unknown_key_in_the_mapping_is_refused_naming_it(tmp_path: Path) -> None:
    folder = copy(tmp_path)
    edit_demand(folder, {"answer": []})
    assert "demand" in error_of(folder) and "answer" in error_of(folder)
