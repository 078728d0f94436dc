"""Every start-up failure is one clear line and a non-zero exit, never a traceback: the real
command run as a subprocess, as a new user would run it. And no command but `hub migrate`
creates the hub database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from hub.migrate import head

FIXTURE_MANIFESTS = Path(__file__).resolve().parents[2] / "fixtures" / "manifests"


def hub(folder: Path, *args: str, **environ: str) -> tuple[int, str]:
    """Run `hub ARGS` in `folder` with only `environ` set (beside PATH): exit code and output."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(folder), **environ}
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout + done.stderr


def assert_one_line(output: str, line: str) -> None:
    assert output == line + "\n"
    assert "Traceback" not in output and "SELECT" not in output


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    """The test manifests with their department databases present (empty files will do: a
    hub that stops before reading them never opens them)."""
    folder = tmp_path / "manifests"
    shutil.copytree(FIXTURE_MANIFESTS, folder)
    for name in ("registry.db", "welfare.db"):
        (folder / name).touch()
    return folder


def test_a_command_in_a_folder_without_a_hub_says_run_migrate_and_creates_nothing(tmp_path: Path) -> None:
    code, output = hub(tmp_path, "apps", "list")
    assert code == 1
    assert_one_line(output, "error: the hub database hub.db does not exist: run `hub migrate` to create it")
    assert list(tmp_path.iterdir()) == []


def test_serving_an_unmigrated_hub_database_says_run_migrate(tmp_path: Path, manifests: Path) -> None:
    (tmp_path / "empty.db").touch()
    code, output = hub(tmp_path, "serve", HUB_DATABASE_URL="sqlite+aiosqlite:///empty.db", HUB_MANIFESTS=str(manifests))
    assert code == 1
    assert_one_line(output, "error: the hub database empty.db is not migrated: run `hub migrate`")


def test_serving_without_the_master_key_file_names_the_file_given(tmp_path: Path, manifests: Path, hub_db: URL) -> None:
    code, output = hub(
        tmp_path,
        "serve",
        HUB_DATABASE_URL=hub_db.render_as_string(),
        HUB_MANIFESTS=str(manifests),
        HUB_MASTER_KEY_FILE="missing.key",
    )
    assert code == 1
    assert_one_line(output, "error: the master key file missing.key does not exist")


def test_serving_without_any_master_key_says_which_variables_to_set(
    tmp_path: Path, manifests: Path, hub_db: URL
) -> None:
    code, output = hub(tmp_path, "serve", HUB_DATABASE_URL=hub_db.render_as_string(), HUB_MANIFESTS=str(manifests))
    assert code == 1
    assert_one_line(output, "error: no master key: set HUB_MASTER_KEY (base64 of 32 bytes) or HUB_MASTER_KEY_FILE")


@pytest.mark.parametrize(
    ("url", "line"),
    [
        (
            "postgres://hub:secret@db/hub",
            "error: HUB_DATABASE_URL: write postgresql+asyncpg:// instead of postgres:// (the hub needs an async driver)",
        ),
        (
            "postgresql://hub:secret@db/hub",
            "error: HUB_DATABASE_URL: write postgresql+asyncpg:// instead of postgresql:// (the hub needs an async driver)",
        ),
        (
            "mysql+aiomysql://hub:secret@db/hub",
            "error: HUB_DATABASE_URL: the driver of mysql+aiomysql:// is not installed (pip install aiomysql), "
            "or write mysql+asyncmy://",
        ),
        (
            "oracle://hub:secret@db/hub",
            "error: HUB_DATABASE_URL: its scheme oracle:// is not a database the hub knows; write one of "
            "sqlite+aiosqlite://, postgresql+asyncpg://, mysql+asyncmy://, mariadb+asyncmy://",
        ),
    ],
)
def test_a_database_url_the_hub_cannot_open_says_what_to_write(tmp_path: Path, url: str, line: str) -> None:
    code, output = hub(tmp_path, "migrate", HUB_DATABASE_URL=url)
    assert code == 1
    assert_one_line(output, line)
    assert "secret" not in output


def test_migrate_says_it_created_the_database_then_that_nothing_was_left(tmp_path: Path) -> None:
    code, output = hub(tmp_path, "migrate")
    assert (code, output) == (0, f"created the hub database sqlite+aiosqlite:///hub.db at revision {head()}\n")
    code, output = hub(tmp_path, "migrate")
    assert code == 0
    assert (
        output
        == f"the hub database sqlite+aiosqlite:///hub.db was already at the newest revision ({head()}); nothing to do\n"
    )
    assert hub(tmp_path, "apps", "list") == (0, "no apps registered\n")


def test_a_department_url_the_hub_cannot_open_names_the_department_and_its_variable(
    tmp_path: Path, manifests: Path, hub_db: URL
) -> None:
    registry = manifests / "registry.yaml"
    registry.write_text(
        registry.read_text(encoding="utf-8").replace("sqlite_path: registry.db", "url_env: REGISTRY_URL"),
        encoding="utf-8",
    )
    code, output = hub(
        tmp_path,
        "serve",
        HUB_DATABASE_URL=hub_db.render_as_string(),
        HUB_MANIFESTS=str(manifests),
        REGISTRY_URL="postgres://reader:secret@db/registry",
    )
    assert code == 1
    assert_one_line(
        output,
        "error: department registry: REGISTRY_URL: write postgresql+asyncpg:// instead of postgres:// "
        "(the hub needs an async driver)",
    )
