"""The command line finds its hub through a settings file: `hub --config FILE`, or `hub.toml` in
the working folder; the environment wins over the file; `hub demo` writes one; every --help
lists the variables its command reads."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from hub.cli import main
from hub.cli.serve import _write_demo_settings
from hub.config import SettingsError, load_settings
from hub.config_file import read_config_file
from hub.demo.workspace import Workspace

DEMO = Path(__file__).resolve().parents[3] / "hub" / "demo" / "manifests"


def _settings_file(folder: Path, hub_db: URL) -> Path:
    path = folder / "hub.toml"
    path.write_text(f'HUB_DATABASE_URL = "{hub_db.render_as_string()}"\nHUB_MANIFESTS = "{DEMO}"\n', encoding="utf-8")
    return path


def _register(env: dict[str, str], *args: str) -> click.testing.Result:
    return CliRunner().invoke(main, [*args, "apps", "create", "filed-app", "--department", "health"], env=env)


def test_config_option_points_every_command_at_the_file_s_hub(hub_db: URL, tmp_path: Path) -> None:
    path = _settings_file(tmp_path, hub_db)
    created = _register({}, "--config", str(path))
    assert created.exit_code == 0, created.output
    listing = CliRunner().invoke(main, ["--config", str(path), "apps", "list"], env={})
    assert listing.exit_code == 0, listing.output
    assert listing.output.startswith("filed-app\thealth\t")


def test_hub_toml_in_the_working_folder_is_read_without_an_option(
    hub_db: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings_file(tmp_path, hub_db)
    monkeypatch.chdir(tmp_path)
    assert _register({}).exit_code == 0
    listing = CliRunner().invoke(main, ["apps", "list"], env={})
    assert "filed-app\thealth" in listing.output


def test_the_environment_wins_over_the_file(hub_db: URL, tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('HUB_DATABASE_URL = "sqlite+aiosqlite:////nowhere/hub.db"\nHUB_MAX_COST = 5\n', encoding="utf-8")
    listing = CliRunner().invoke(
        main, ["--config", str(path), "apps", "list"], env={"HUB_DATABASE_URL": hub_db.render_as_string()}
    )
    assert (listing.exit_code, listing.output) == (0, "no apps registered\n")
    settings = load_settings({"HUB_MAX_COST": "7"}, file_values=read_config_file(path))
    assert settings.max_cost == 7
    assert load_settings({}, file_values=read_config_file(path)).max_cost == 5


def test_a_missing_or_malformed_settings_file_is_one_line(tmp_path: Path) -> None:
    missing = CliRunner().invoke(main, ["--config", str(tmp_path / "none.toml"), "apps", "list"], env={})
    assert (missing.exit_code, missing.output) == (
        1,
        f"error: the settings file {tmp_path / 'none.toml'} does not exist\n",
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('HUB_DATABASE_URL = "unclosed\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(bad), "apps", "list"], env={})
    assert result.exit_code == 1
    assert result.output.startswith(f"error: the settings file {bad} is not TOML (")
    assert "unclosed" not in result.output and "Traceback" not in result.output


def test_a_table_in_the_settings_file_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("[HUB_LOOKUP_QUOTAS]\nauditor = 5\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="HUB_LOOKUP_QUOTAS must be a text, a number or true/false"):
        read_config_file(path)


def test_true_and_false_in_the_file_read_as_on_and_off(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("HUB_GRAPHIQL = true\nHUB_INTROSPECTION = false\n", encoding="utf-8")
    settings = load_settings({}, file_values=read_config_file(path))
    assert (settings.graphiql, settings.introspection) == (True, False)


def test_the_demo_s_settings_file_names_its_hub_with_absolute_paths(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "demo-data")
    workspace.root.mkdir()
    _write_demo_settings(workspace)
    values = read_config_file(workspace.root / "hub.toml")
    settings = load_settings({}, file_values=values)
    assert settings.database_url == workspace.hub_database
    assert settings.manifests_dir == workspace.manifests
    assert settings.master_key_file == workspace.master_key_file
    assert all(Path(v.removeprefix("sqlite+aiosqlite:///")).is_absolute() for v in values.values())


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in group.commands.items():
        found.append(((*prefix, name), command))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize(
    ("path", "command"), _commands(main), ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_help_lists_the_environment_it_reads(path: tuple[str, ...], command: click.Command) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], env={})
    assert result.exit_code == 0
    if path == ("schema",):
        assert "Reads no environment variable" in result.output
    else:
        assert "Environment:" in result.output
        if path[0] == "manifest":
            # Drafting and checking manifests reads department databases, never the hub's.
            assert "--url-env" in result.output and "HUB_MANIFESTS" in result.output
        elif path[0] == "federation":
            # The subgraph SDL comes from the manifests alone, never the hub database.
            assert "HUB_MANIFESTS" in result.output and "HUB_DATABASE_URL" not in result.output
        elif path == ("reload",):
            # It asks a serving hub, as its admin: the token is all it reads.
            assert "HUB_ADMIN_TOKEN" in result.output and "HUB_DATABASE_URL" not in result.output
        else:
            assert "HUB_DATABASE_URL" in result.output or path == ("demo",)
        assert "hub.toml" in result.output


def test_the_hub_database_needing_the_master_key_says_so_in_help() -> None:
    for path in (["serve"], ["keys", "status"], ["encrypt-column"], ["keys", "reencrypt"]):
        assert "HUB_MASTER_KEY_FILE" in CliRunner().invoke(main, [*path, "--help"], env={}).output
    assert "--config" in CliRunner().invoke(main, ["--help"], env={}).output
