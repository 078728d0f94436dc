"""`hub catalog`: the catalog hash every instance of a hub must serve (hub/instances).

`publish` records the hash of the manifests in HUB_MANIFESTS (after checking they load) as the
one instances must match: run it when rolling out a manifest change, once the new manifests are
on the instances that are to serve them. `show` prints this folder's hash beside the recorded
one."""

from __future__ import annotations

import click

from hub.catalog import ManifestError, load_catalog
from hub.cli.base import fail, hub_database, run, settings_from_env
from hub.instances.catalog_hash import Published, catalog_hash, publish, published


@click.group(help="The catalog hash every instance of this hub must serve (see /readyz).")
def catalog() -> None:
    pass


@catalog.command("publish", help="Record the hash of the manifests in HUB_MANIFESTS as the one instances must match.")
def catalog_publish() -> None:
    settings = settings_from_env()
    try:
        load_catalog(settings.manifests_dir)
    except ManifestError as exc:
        fail(str(exc))
    hash_ = catalog_hash(settings.manifests_dir)

    async def record() -> Published | None:
        async with hub_database(settings) as sessions, sessions() as session, session.begin():
            return await publish(session, hash_)

    before = run(record)
    if before is not None and before.hash == hash_:
        click.echo(f"the catalog {hash_} was already published; instances serving it stay ready")
    else:
        click.echo(f"published the catalog {hash_}; instances serving other manifests now answer /readyz with 503")


@catalog.command("show", help="Print the hash of HUB_MANIFESTS and the one the hub database records.")
def catalog_show() -> None:
    settings = settings_from_env()
    hash_ = catalog_hash(settings.manifests_dir)

    async def read() -> Published | None:
        async with hub_database(settings) as sessions, sessions() as session:
            return await published(session)

    recorded = run(read)
    click.echo(f"these manifests: {hash_}")
    if recorded is None:
        click.echo("published: none yet (the first instance to start records its own)")
    else:
        state = "matches" if recorded.hash == hash_ else "differs"
        when = f"{recorded.published_at:%Y-%m-%d %H:%M} UTC"
        click.echo(f"published: {recorded.hash} ({state}; by {recorded.published_by}, {when})")
