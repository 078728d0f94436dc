"""`hub onboard`: a new department's hub in one command, for the README's onboarding steps.

It folds what a newcomer otherwise types one by one: the manifest draft (`hub manifest draft`),
the hub's settings file (`hub.toml`: the hub database, the manifest folder and the master key
file, so later commands find the hub from this folder), the master key (`hub keys
new-master-key`), the hub database (`hub migrate`) and the department's app with its token
(`hub apps create`). What exists already is kept: an existing settings file or master key is
used as it is, and a manifest already there is never overwritten (it may hold a person's edits).
The department's URL stays in its environment variable: it may hold a password, and the settings
file is written in plain text.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from hub.cli.apps import apps_create
from hub.cli.base import fail, settings_from_env
from hub.cli.manifest import write_draft
from hub.config_file import DEFAULT_NAME, write_config_file

# What a new hub's settings file holds, relative to the folder it is written in.
NEW_HUB = {
    "HUB_DATABASE_URL": "sqlite+aiosqlite:///hub.db",
    "HUB_MANIFESTS": "manifests",
    "HUB_MASTER_KEY_FILE": "master.key",
}


@click.command(
    "onboard",
    help=(
        "Onboard a department in one step: draft its manifest into the manifest folder, and on a new hub "
        "write hub.toml, a master key and the hub database here; then register the department's app and "
        "print its token. Review the draft's `decide:` comments, run `hub manifest check`, then `hub serve`."
    ),
)
@click.option("--url-env", required=True, help="Environment variable holding the department database URL.")
@click.option("--department", required=True, help="The department's name (lower case, e.g. housing).")
@click.option("--tables", "tables", multiple=True, help="Tables to draft (repeat, or comma-separated); default all.")
@click.option(
    "--sample", default=200, show_default=True, type=click.IntRange(1, 100_000), help="Rows sampled per table."
)
@click.option("--app", "app_name", help="The department app's name (default: DEPARTMENT-app).")
@click.option("--role", default="department_app", show_default=True, help="The app's role.")
@click.pass_context
def onboard(
    context: click.Context,
    url_env: str,
    department: str,
    tables: tuple[str, ...],
    sample: int,
    app_name: str | None,
    role: str,
) -> None:
    from hub.crypto.errors import MasterKeyError
    from hub.crypto.master import create_master_key_file
    from hub.migrate import head, upgrade

    given = context.find_root().params.get("config")
    # A new hub: no settings file here or given, and nothing in the environment naming one.
    fresh = given is None and not Path(DEFAULT_NAME).exists() and "HUB_DATABASE_URL" not in os.environ
    settings = settings_from_env(**({} if not fresh else {"manifests_dir": Path(NEW_HUB["HUB_MANIFESTS"])}))
    output = settings.manifests_dir / f"{department}.yaml"
    if output.exists():
        fail(f"{output} exists: edit it (or remove it to draft again), then run `hub manifest check`")
    settings.manifests_dir.mkdir(parents=True, exist_ok=True)
    write_draft(url_env, department, tables, output, sample)
    if fresh:
        write_config_file(
            Path(DEFAULT_NAME),
            NEW_HUB,
            "Written by `hub onboard`: this hub, for every `hub` command run in this folder.",
        )
        click.echo(f"wrote {DEFAULT_NAME}: `hub` commands run in this folder use this hub", err=True)
    settings = settings_from_env()
    if settings.master_key is None and settings.master_key_file is not None and not settings.master_key_file.exists():
        try:
            key = create_master_key_file(settings.master_key_file)
        except MasterKeyError as error:
            fail(str(error))
        click.echo(
            f"made master key {key.id} in {settings.master_key_file} (mode 0600): keep a copy offline (docs/keys.md)",
            err=True,
        )
    upgrade(settings.database_url)
    click.echo(
        f"the hub database {settings.database_url.render_as_string(hide_password=True)} is at {head()}", err=True
    )
    context.invoke(
        apps_create,
        name=app_name or f"{department.replace('_', '-')}-app",
        department=department,
        roles=(role,),
        attributes=(),
        days=90,
        manifests=None,
    )
