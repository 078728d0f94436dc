"""`hub onboard`: on a new hub it leaves a hub that later commands in the folder find; it never
overwrites a manifest (a person's edits) nor a master key, and on an existing hub it writes no
settings file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hub.cli.main import main
from tests.housing_department import housing_database


def _onboard(folder: Path, url: str, *more: str, **environ: str) -> Result:
    before = Path.cwd()
    os.chdir(folder)
    try:
        return CliRunner().invoke(
            main,
            ["onboard", "--url-env", "HOUSING_URL", "--department", "housing", *more],
            env={"HOUSING_URL": url, **environ},
        )
    finally:
        os.chdir(before)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return housing_database("sqlite", tmp_path)


def test_a_new_hub_is_made_here_and_the_apps_token_printed(tmp_path: Path, url: str) -> None:
    folder = tmp_path / "hub"
    folder.mkdir()
    result = _onboard(folder, url)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["hub.db", "hub.toml", "manifests", "master.key"]
    assert (folder / "manifests" / "housing.yaml").is_file()
    assert oct((folder / "master.key").stat().st_mode & 0o777) == "0o600"
    assert result.stdout.splitlines()[0] == "registered housing-app; token (store it now, it is not shown again):"
    assert result.stdout.splitlines()[1].startswith("hub_")
    # The department URL, which may hold a password, is not written down.
    assert "HOUSING_URL" not in (folder / "hub.toml").read_text(encoding="utf-8")


def test_a_second_run_keeps_the_edited_manifest_and_the_key(tmp_path: Path, url: str) -> None:
    folder = tmp_path / "hub"
    folder.mkdir()
    assert _onboard(folder, url).exit_code == 0
    manifest = folder / "manifests" / "housing.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    key = (folder / "master.key").read_bytes()
    again = _onboard(folder, url)
    assert again.exit_code == 1
    assert again.stderr == (
        "error: manifests/housing.yaml exists: edit it (or remove it to draft again), then run `hub manifest check`\n"
    )
    assert manifest.read_text(encoding="utf-8").endswith("# edited\n")
    assert (folder / "master.key").read_bytes() == key


def test_on_an_existing_hub_it_writes_no_settings_file(tmp_path: Path, url: str) -> None:
    folder = tmp_path / "hub"
    (folder / "elsewhere").mkdir(parents=True)
    environ = {
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'elsewhere' / 'hub.db'}",
        "HUB_MANIFESTS": str(folder / "elsewhere" / "manifests"),
        "HUB_MASTER_KEY_FILE": str(folder / "elsewhere" / "master.key"),
    }
    result = _onboard(folder, url, "--app", "housing-office", **environ)
    assert result.exit_code == 0, result.output
    assert list(folder.iterdir()) == [folder / "elsewhere"]
    assert (folder / "elsewhere" / "manifests" / "housing.yaml").is_file()
    assert "registered housing-office" in result.stdout
