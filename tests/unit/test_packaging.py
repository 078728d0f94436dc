"""The packages are this repository's (PyPI has unrelated `schema`, `connectors` and `hub`),
the SDL snapshot is current, and a built wheel carries its migrations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import connectors
import hub
import schema
from hub.catalog import load_catalog
from hub.demo.workspace import manifest_templates
from schema import build_schema

ROOT = Path(__file__).resolve().parents[2]


def test_packages_import_from_this_repository() -> None:
    for package in (hub, schema, connectors):
        assert Path(package.__file__ or "").resolve().parent.parent == ROOT


def test_sdl_snapshot_is_current() -> None:
    built = build_schema(load_catalog(manifest_templates()[0].parent)).sdl()
    committed = (ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8")
    assert committed == built, "schema/schema.graphql is stale: run `hub schema` and commit it"


@pytest.mark.slow
def test_built_wheel_migrates_a_hub_database(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheel_dir),
            str(ROOT),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheel_dir.glob("*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)], check=True
    )
    # The wheel's packages come first on the path; dependencies come from this environment.
    env = {**os.environ, "PYTHONPATH": str(site), "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"}
    where = subprocess.run(
        [sys.executable, "-c", "import hub, migrations; print(hub.__file__); print(list(migrations.__path__)[0])"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert all(line.startswith(str(site)) for line in where.stdout.split())
    migrated = subprocess.run(
        [sys.executable, "-m", "hub.cli", "migrate"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "created the hub database" in migrated.stdout
    assert (site / "hub" / "static" / "graphiql" / "index.html").exists()
    assert list((site / "hub" / "demo" / "manifests").glob("*.yaml"))
