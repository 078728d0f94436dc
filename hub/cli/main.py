"""The `hub` command group, and every command added to it, explicitly, in one place."""

from __future__ import annotations

import click

from hub.cli.apps import apps
from hub.cli.audit import audit
from hub.cli.documents import documents
from hub.cli.keys import keys
from hub.cli.maintenance import encrypt_column, reencrypt
from hub.cli.manifest import manifest
from hub.cli.policy import policy
from hub.cli.serve import demo, load_demo_command, migrate, schema, serve


@click.group(help="The department data-sharing hub.")
def main() -> None:
    pass


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
):
    main.add_command(command)
keys.add_command(reencrypt)
