"""The catalog hash: what manifests say about data changes it, where a department's database
is reached does not."""

from __future__ import annotations

import shutil
from pathlib import Path

from hub.instances.catalog_hash import catalog_hash
from tests.conftest import FIXTURES


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "manifests"
    shutil.copytree(FIXTURES / "manifests", folder)
    return folder


def test_a_changed_tier_changes_the_hash(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    welfare = folder / "registry.yaml"
    assert "tier: L2" in welfare.read_text(encoding="utf-8")
    welfare.write_text(welfare.read_text(encoding="utf-8").replace("tier: L2", "tier: L3", 1), encoding="utf-8")
    assert catalog_hash(folder) != catalog_hash(FIXTURES / "manifests")


def test_another_connection_or_layout_of_the_same_manifest_keeps_the_hash(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    registry = folder / "registry.yaml"
    text = registry.read_text(encoding="utf-8")
    assert "sqlite_path: registry.db" in text
    registry.write_text(
        "# a comment\n" + text.replace("sqlite_path: registry.db", "url_env: REGISTRY_URL"), encoding="utf-8"
    )
    assert catalog_hash(folder) == catalog_hash(FIXTURES / "manifests")


def test_an_added_manifest_changes_the_hash_and_an_empty_folder_has_one(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    shutil.copy(folder / "welfare.yaml", folder / "welfare2.yaml")
    assert catalog_hash(folder) != catalog_hash(FIXTURES / "manifests")
    assert catalog_hash(tmp_path / "nothing").startswith("sha256:")
