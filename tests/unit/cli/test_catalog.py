"""`hub catalog publish` and `show`: the hash instances must match, recorded by the command."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy.engine import URL

from hub.cli import main
from hub.instances.catalog_hash import catalog_hash
from tests.conftest import FIXTURES


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["catalog", *args], env=env)
    return result.exit_code, result.output


def test_publish_records_the_manifests_hash_and_show_compares_another_folder(hub_db: URL, tmp_path: Path) -> None:
    env = {"HUB_DATABASE_URL": hub_db.render_as_string(), "HUB_MANIFESTS": str(FIXTURES / "manifests")}
    code, output = run(env, "show")
    assert code == 0
    assert "published: none yet" in output
    code, output = run(env, "publish")
    assert code == 0, output
    assert f"published the catalog {catalog_hash(FIXTURES / 'manifests')}" in output
    changed = tmp_path / "manifests"
    shutil.copytree(FIXTURES / "manifests", changed)
    welfare = changed / "registry.yaml"
    welfare.write_text(welfare.read_text(encoding="utf-8").replace("tier: L2", "tier: L3", 1), encoding="utf-8")
    code, output = run({**env, "HUB_MANIFESTS": str(changed)}, "show")
    assert code == 0
    assert "(differs;" in output


def test_publishing_manifests_that_do_not_load_records_nothing(hub_db: URL, tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("department: [", encoding="utf-8")
    code, output = run({"HUB_DATABASE_URL": hub_db.render_as_string(), "HUB_MANIFESTS": str(tmp_path)}, "publish")
    assert code == 1
    assert "Traceback" not in output
    env = {"HUB_DATABASE_URL": hub_db.render_as_string(), "HUB_MANIFESTS": str(FIXTURES / "manifests")}
    assert "published: none yet" in run(env, "show")[1]
