"""Entities shared across hubs (`shared:` in a manifest): checked at start-up, with a message
naming the file and the shared type; declarations of one type in several departments merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.catalog import ManifestError, load_catalog

FINGERPRINT = "0123456789abcdef0123456789abcdef"

REGISTRY = """
department: registry
connection: {{sqlite_path: registry.db}}
entities:
  - name: Person
    table: person
    key: idNumber
    fields:
      - {{name: idNumber, type: ID, tier: L3, encrypted: true, blind_index: resident_id}}
      - {{name: name, type: String, tier: L3}}
  - name: BudgetLine
    table: budget_line
    key: code
    fields:
      - {{name: code, type: ID}}
      - {{name: amount, type: Decimal}}
{shared}
"""

WELFARE = """
department: welfare
connection: {{sqlite_path: welfare.db}}
entities:
  - name: Case
    table: welfare_case
    key: caseId
    fields:
      - {{name: caseId, type: ID}}
      - {{name: recipientIdNumber, type: ID, tier: L3, encrypted: true, blind_index: resident_id}}
{shared}
"""

RESIDENT = """
shared:
  - type: Resident
    key: residentIndex
    index_domain: resident_id
    index_fingerprint: "{fingerprint}"
    members:
      - {{entity: {entity}, field: {field}, name: {name}{many}}}
"""


def _resident(entity: str, field: str, name: str, many: bool = False, fingerprint: str = FINGERPRINT) -> str:
    return RESIDENT.format(
        entity=entity, field=field, name=name, many=", many: true" if many else "", fingerprint=fingerprint
    )


def _load(tmp_path: Path, registry: str, welfare: str = "") -> object:
    (tmp_path / "registry.yaml").write_text(REGISTRY.format(shared=registry), encoding="utf-8")
    (tmp_path / "welfare.yaml").write_text(WELFARE.format(shared=welfare), encoding="utf-8")
    return load_catalog(tmp_path)


def _error(tmp_path: Path, registry: str, welfare: str = "") -> str:
    with pytest.raises(ManifestError) as caught:
        _load(tmp_path, registry, welfare)
    return str(caught.value)


def test_two_departments_declaring_one_shared_type_merge_their_members(tmp_path: Path) -> None:
    catalog = _load(
        tmp_path, _resident("Person", "idNumber", "person"), _resident("Case", "recipientIdNumber", "cases", True)
    )
    shared = catalog.shared["Resident"]  # type: ignore[attr-defined]
    assert sorted(shared.members) == ["cases", "person"]
    assert catalog.entity("welfare.Case").links == {"resident": ("Resident", "recipientIdNumber")}  # type: ignore[attr-defined]


def test_a_plain_key_like_a_budget_line_code_is_shared_by_its_value(tmp_path: Path) -> None:
    plain = "shared:\n  - {type: Budget, key: code, members: [{entity: BudgetLine, field: code, name: line}]}\n"
    catalog = _load(tmp_path, plain)
    assert catalog.shared["Budget"].index_domain is None  # type: ignore[attr-defined]


def test_a_member_not_indexed_in_the_declared_domain_is_refused(tmp_path: Path) -> None:
    error = _error(tmp_path, _resident("Person", "name", "person"))
    assert "registry.yaml: shared Resident" in error and "blind index of the domain resident_id" in error


def test_an_encrypted_field_shared_by_its_plain_value_is_refused(tmp_path: Path) -> None:
    plain = "shared:\n  - {type: Resident, key: rid, members: [{entity: Person, field: idNumber, name: person}]}\n"
    assert "share it by its blind index" in _error(tmp_path, plain)


def test_a_to_one_member_that_is_not_its_entitys_key_is_refused(tmp_path: Path) -> None:
    error = _error(tmp_path, "", _resident("Case", "recipientIdNumber", "case"))
    assert "must use its entity's key" in error


def test_a_shared_type_named_like_a_generated_type_is_refused(tmp_path: Path) -> None:
    clash = "shared:\n  - {type: RegistryPerson, key: code, members: [{entity: BudgetLine, field: code, name: line}]}\n"
    assert "already used" in _error(tmp_path, clash)


def test_declarations_of_one_type_that_disagree_on_the_key_are_refused(tmp_path: Path) -> None:
    error = _error(
        tmp_path,
        _resident("Person", "idNumber", "person"),
        _resident("Case", "recipientIdNumber", "cases", True, fingerprint="f" * 32),
    )
    assert "another key, domain or fingerprint" in error


def test_a_domain_without_the_fingerprint_of_its_key_is_refused(tmp_path: Path) -> None:
    missing = (
        "shared:\n  - {type: Resident, key: rid, index_domain: resident_id, "
        "members: [{entity: Person, field: idNumber, name: person}]}\n"
    )
    assert "index_fingerprint" in _error(tmp_path, missing)


def test_a_plain_key_that_identifies_a_person_is_refused(tmp_path: Path) -> None:
    plain = "shared:\n  - {type: Named, key: name, members: [{entity: Person, field: name, name: person}]}\n"
    error = _error(tmp_path, plain)
    assert "identifies a person or is sensitive (L3)" in error
