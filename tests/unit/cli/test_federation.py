"""`hub federation sdl`: the subgraph SDL a hub serves at `_service`, from its manifests; a
hub whose manifests share nothing is no subgraph, said in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from hub.cli import main
from tests.conftest import FIXTURES

SHARED = """
shared:
  - type: Area
    key: areaName
    members:
      - {entity: Person, field: district, name: residents, many: true}
"""


def test_federation_sdl_prints_the_link_the_key_and_the_link_field(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    shutil.copytree(FIXTURES / "manifests", folder)
    registry = folder / "registry.yaml"
    registry.write_text(registry.read_text(encoding="utf-8") + SHARED, encoding="utf-8")
    result = CliRunner().invoke(main, ["federation", "sdl", "--manifests", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith('extend schema @link(url: "https://specs.apollo.dev/federation/v2.3"')
    assert 'type Area @key(fields: "areaName")' in result.output
    assert "area: Area" in result.output  # RegistryPerson's link field
    assert "type Mutation" not in result.output


def test_federation_sdl_of_manifests_that_share_nothing_fails_in_one_line() -> None:
    result = CliRunner().invoke(main, ["federation", "sdl", "--manifests", str(FIXTURES / "manifests")])
    assert result.exit_code == 1
    assert "share no entity" in result.stderr
