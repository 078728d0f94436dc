"""The `hub` command group, and every command added to it, explicitly, in one place; with the
settings file option and, in each command's --help, the environment variables it reads."""

from __future__ import annotations

from pathlib import Path

import click

from hub.cli.apps import apps
from hub.cli.audit import audit
from hub.cli.documents import documents
from hub.cli.keys import keys
from hub.cli.lineage import lineage
from hub.cli.maintenance import encrypt_column, reencrypt
from hub.cli.manifest import manifest
from hub.cli.policy import policy
from hub.cli.serve import demo, load_demo_command, migrate, schema, serve

HUB_DB = "HUB_DATABASE_URL (the hub database)"
MANIFESTS = "HUB_MANIFESTS (the manifest folder)"
MASTER = "HUB_MASTER_KEY or HUB_MASTER_KEY_FILE (the master key)"
URLS = "the connection URL variables the manifests name (url_env)"
# What each command reads; a group's list covers its subcommands.
READS: dict[str, tuple[str, ...]] = {
    "serve": (HUB_DB, MANIFESTS, MASTER, URLS, "every other HUB_* setting in the README's table"),
    "demo": ("HUB_INTROSPECTION, HUB_GRAPHIQL and the README's other HUB_* settings (not the three the demo sets)",),
    "load-demo": (HUB_DB, MASTER),
    "migrate": (HUB_DB,),
    "schema": (),
    "policy": (HUB_DB, MANIFESTS, "HUB_MAX_GRANT_DAYS", "HUB_MIN_MASK_CANDIDATES"),
    "apps": (HUB_DB, MANIFESTS + ", for create"),
    "keys": (HUB_DB, MASTER),
    "documents": (HUB_DB, MANIFESTS, "HUB_MAX_* limits (a document must pass them)"),
    "encrypt-column": (HUB_DB, MANIFESTS, MASTER, URLS),
    "audit": (HUB_DB, MASTER, "HUB_AUDIT_*"),
    "manifest": ("the variable --url-env names (draft)", MANIFESTS + " and " + URLS + " (check)"),
    "lineage": (HUB_DB + " (verify)", "HUB_TOKEN, the app's token (export)"),
}
SETTINGS_FILE = (
    "Each variable may instead be set in the settings file (`hub --config FILE`, else hub.toml in the "
    'working folder), as NAME = "value"; the environment wins over the file.'
)


@click.group(
    help="The department data-sharing hub.",
    epilog="Settings come from the environment (HUB_DATABASE_URL, HUB_MANIFESTS, HUB_MASTER_KEY_FILE, ...) over "
    "the settings file: --config FILE, else hub.toml in the working folder (`hub demo` writes one in its data "
    "folder). Each command's --help lists the variables it reads.",
)
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help='Settings file (TOML, NAME = "value"); default hub.toml in the working folder when there is one.',
)
def main(config: Path | None) -> None:
    # Commands read the option from the root context (hub.cli.base.settings_from_env).
    pass


def _environment_epilog(reads: tuple[str, ...]) -> str:
    if not reads:
        return "Reads no environment variable (no settings file either)."
    # \b keeps click from rewrapping the list into one paragraph.
    return "\b\nEnvironment:\n" + "\n".join(f"  {line}" for line in reads) + "\n\n" + SETTINGS_FILE


def _describe(command: click.Command, reads: tuple[str, ...]) -> None:
    command.epilog = _environment_epilog(reads)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _describe(sub, reads)


for command in (
    serve,
    demo,
    load_demo_command,
    migrate,
    schema,
    policy,
    apps,
    keys,
    documents,
    encrypt_column,
    audit,
    manifest,
    lineage,
):
    main.add_command(command)
keys.add_command(reencrypt)
for name, command in main.commands.items():
    _describe(command, READS[name])
# It reads the department databases it rewrites, unlike the rest of `hub keys`.
_describe(reencrypt, READS["encrypt-column"])
