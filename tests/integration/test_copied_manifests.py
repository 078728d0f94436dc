"""Manifests copied from the demo into a new hub: their encrypted columns were written under
the demo's keys. The new hub refuses to start with one line naming the department, the field
and the key version, pointing to `hub keys restore`, and makes no data key that could never
open those values; with the demo's keys restored (`hub keys backup`, `hub keys restore`) it
starts."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from hub.app import create_app
from hub.cli.main import main
from hub.config import Settings, load_settings
from hub.crypto.keyring import current_data_version, provision
from hub.crypto.master import MasterKey
from hub.db.engine import hub_engine, sessions
from hub.demo.workspace import DEPARTMENTS, Workspace
from hub.migrate import upgrade
from hub.services import StartupRefused, build_services
from tests.conftest import TEST_MASTER_KEY
from tests.demo_copies import copy_demo_manifests


@pytest.fixture
def new_hub(demo_workspace: Workspace, tmp_path: Path) -> Settings:
    url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "hub.db"))
    upgrade(url)
    return load_settings(
        {},
        database_url=url.render_as_string(),
        manifests_dir=copy_demo_manifests(demo_workspace, tmp_path / "manifests"),
        master_key=TEST_MASTER_KEY,
    )


def _start(settings: Settings) -> None:
    with TestClient(create_app(build_services(settings))):
        pass


def _data_versions(settings: Settings, departments: list[str]) -> list[int | None]:
    async def read() -> list[int | None]:
        engine = hub_engine(settings.database_url)
        try:
            async with sessions(engine)() as session:
                return [await current_data_version(session, name) for name in departments]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_copied_manifests_without_their_keys_stop_the_start_and_make_no_key(new_hub: Settings) -> None:
    with pytest.raises(StartupRefused) as refused:
        _start(new_hub)
    assert str(refused.value) == (
        "the hub will not start: department civil_affairs: field AssistanceCase.recipientIdNumber already holds "
        "values encrypted under data key version 1, and this hub holds no data key for civil_affairs; it will "
        "not make one that cannot open them: restore the keys with `hub keys restore`"
    )
    assert _data_versions(new_hub, ["civil_affairs", "population"]) == [None, None]


def test_values_no_key_of_this_hub_opens_stop_the_start(new_hub: Settings) -> None:
    # Keys made for these departments before the data was copied in: they cannot open it.
    async def make_keys() -> None:
        engine = hub_engine(new_hub.database_url)
        try:
            async with sessions(engine)() as session, session.begin():
                await provision(session, MasterKey(TEST_MASTER_KEY), DEPARTMENTS, [])
        finally:
            await engine.dispose()

    asyncio.run(make_keys())
    with pytest.raises(StartupRefused) as refused:
        _start(new_hub)
    assert str(refused.value) == (
        "the hub will not start: department civil_affairs: no stored value of field "
        "AssistanceCase.recipientIdNumber opens with this hub's data key version 1 (altered, or moved from "
        "another row, field, entity or department): the values were written under other keys; restore them "
        "with `hub keys restore`"
    )


def test_with_the_keys_restored_the_copied_manifests_are_served(
    demo_workspace: Workspace, new_hub: Settings, tmp_path: Path
) -> None:
    backup = tmp_path / "keys.json"
    master = str(demo_workspace.master_key_file)
    made = CliRunner().invoke(
        main,
        ["keys", "backup", "--output", str(backup)],
        env={"HUB_DATABASE_URL": demo_workspace.hub_database.render_as_string(), "HUB_MASTER_KEY_FILE": master},
    )
    assert made.exit_code == 0, made.output
    restored = CliRunner().invoke(
        main,
        ["keys", "restore", str(backup)],
        env={"HUB_DATABASE_URL": new_hub.database_url.render_as_string(), "HUB_MASTER_KEY_FILE": master},
    )
    assert restored.exit_code == 0, restored.output
    settings = replace(new_hub, master_key=None, master_key_file=demo_workspace.master_key_file)
    with TestClient(create_app(build_services(settings))) as client:
        assert client.get("/readyz").json()["departments"]["civil_affairs"]["schema"] == "matches"


def test_serve_with_copied_manifests_stops_with_one_line_and_no_traceback(new_hub: Settings, tmp_path: Path) -> None:
    # The real `hub serve`, as an operator runs it: the refusal used to print uvicorn's
    # traceback of the failed lifespan above the line.
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "HUB_DATABASE_URL": new_hub.database_url.render_as_string(),
        "HUB_MANIFESTS": str(new_hub.manifests_dir),
        "HUB_MASTER_KEY": base64.b64encode(TEST_MASTER_KEY).decode(),
    }
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "serve", "--port", "0"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert done.stderr == (
        "error: the hub will not start: department civil_affairs: field AssistanceCase.recipientIdNumber already "
        "holds values encrypted under data key version 1, and this hub holds no data key for civil_affairs; it "
        "will not make one that cannot open them: restore the keys with `hub keys restore`\n"
    )
    assert done.stdout == ""
