"""A bad manifest stops the hub with a message naming the file, the entity and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.catalog import ManifestError, load_catalog
from hub.catalog.manifest import Tier
from hub.cli import main
from tests.conftest import FIXTURES

GOOD_PERSON = """
department: registry
connection: {sqlite_path: registry.db}
entities:
  - name: Person
    table: person
    key: idNumber
    fields:
      - {name: idNumber, type: ID, tier: L3}
      - {name: name, type: String, tier: L3}
"""


def write(folder: Path, name: str, text: str) -> Path:
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def error_of(folder: Path) -> str:
    with pytest.raises(ManifestError) as caught:
        load_catalog(folder)
    return str(caught.value)


def test_catalog_carries_tiers_masks_encryption_and_lineage(small_catalog) -> None:  # type: ignore[no-untyped-def]
    person = small_catalog.entity("registry.Person")
    assert person.fields["idNumber"].tier is Tier.L3
    assert person.fields["idNumber"].mask.kind == "partial"
    assert person.type_name == "RegistryPerson"
    assert person.list_field == "registryPersons"
    assert small_catalog.entity("welfare.Case").lineage_role.value == "service_delivery"


def test_wrong_field_type_names_file_entity_and_field(tmp_path: Path) -> None:
    write(tmp_path, "registry.yaml", GOOD_PERSON.replace("type: String", "type: Text"))
    message = error_of(tmp_path)
    assert message.startswith("registry.yaml: entity Person, field name, type: Input should be")


def test_unknown_tier_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        "registry.yaml",
        GOOD_PERSON.replace("tier: L3}\n      - {name: name", "tier: L9}\n      - {name: name"),
    )
    assert "registry.yaml: entity Person, field idNumber, tier: Input should be" in error_of(tmp_path)


def test_mask_that_does_not_fit_the_type_is_refused(tmp_path: Path) -> None:
    text = GOOD_PERSON.replace(
        "{name: name, type: String, tier: L3}", "{name: name, type: String, mask: {kind: round}}"
    )
    write(tmp_path, "registry.yaml", text)
    message = error_of(tmp_path)
    assert "field name" in message and "round mask needs" in message


def test_missing_key_field_is_named(tmp_path: Path) -> None:
    write(tmp_path, "registry.yaml", GOOD_PERSON.replace("key: idNumber", "key: personId"))
    assert error_of(tmp_path) == "registry.yaml: entity Person: key personId is not one of its fields"


def test_relation_to_unknown_entity_is_named(tmp_path: Path) -> None:
    text = GOOD_PERSON + "    relations:\n      - {name: cases, target: welfare.Case, field: idNumber, many: true}\n"
    write(tmp_path, "registry.yaml", text)
    assert (
        error_of(tmp_path)
        == "registry.yaml: entity Person, relation cases: target welfare.Case is not a declared entity"
    )


def test_connection_needs_an_env_reference_not_an_inline_url(tmp_path: Path) -> None:
    text = GOOD_PERSON.replace("{sqlite_path: registry.db}", "{url: 'postgresql://u:secret@db/x'}")
    write(tmp_path, "registry.yaml", text)
    message = error_of(tmp_path)
    assert "connection" in message and "secret" not in message


def test_reserved_word_as_field_name_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "registry.yaml", GOOD_PERSON.replace("{name: name,", "{name: not,"))
    assert "reserved word" in error_of(tmp_path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "registry.yaml", "department: [unclosed\n")
    assert error_of(tmp_path).startswith("registry.yaml: not valid YAML at line")


def test_same_graphql_name_in_two_manifests_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD_PERSON)
    write(
        tmp_path,
        "b.yaml",
        GOOD_PERSON.replace("department: registry", "department: other").replace(
            "entities:", "prefix: Registry\nentities:"
        ),
    )
    assert "GraphQL name RegistryPerson is also used by a.yaml: entity Person" in error_of(tmp_path)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    assert "holds no *.yaml manifest" in error_of(tmp_path)


def test_hub_serve_with_a_bad_manifest_prints_one_line_and_exits(tmp_path: Path) -> None:
    write(tmp_path, "registry.yaml", GOOD_PERSON.replace("key: idNumber", "key: personId"))
    result = CliRunner().invoke(
        main,
        ["serve", "--manifests", str(tmp_path)],
        env={"HUB_DATABASE_URL": "sqlite+aiosqlite:///" + str(tmp_path / "hub.db")},
    )
    assert result.exit_code == 1
    assert result.output.strip() == "error: registry.yaml: entity Person: key personId is not one of its fields"


def test_fixture_manifests_load() -> None:
    assert len(load_catalog(FIXTURES / "manifests").entities) == 2
