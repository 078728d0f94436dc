"""`hub keys index-recipient | fingerprint-index | export-index | import-index`: sharing a
blind-index domain's key with another hub, for an entity shared under a Federation `@key`
(docs/federation.md, hub/crypto/index_transfer.py).

Sharing the key widens who can compute indexes of the domain: every hub holding it can tell
whether an ID number it is given appears in another's data. The key leaves the hub only sealed
for the receiving hub's master key; no command prints a key's bytes.
"""

from __future__ import annotations

from pathlib import Path

import click

from hub.cli.base import fail, hub_database, run, settings_from_env
from hub.crypto.errors import CryptoError
from hub.crypto.index_transfer import TransferError, open_index_key, recipient_key, seal_index_key
from hub.crypto.keyring import import_index_key, load_keyring
from hub.crypto.master import MasterKey, master_key_from_settings

DOMAIN = click.argument("domain", metavar="DOMAIN")


def _master() -> MasterKey:
    try:
        return master_key_from_settings(settings_from_env())
    except CryptoError as exc:
        fail(str(exc))


@click.command("index-recipient", help="Print this hub's transfer public key, for `export-index --for` on another hub.")
def index_recipient() -> None:
    click.echo(recipient_key(_master()))


@click.command("fingerprint-index", help="Print the fingerprint of DOMAIN's blind-index key (for `shared` manifests).")
@DOMAIN
def fingerprint_index(domain: str) -> None:
    settings = settings_from_env()
    master = _master()

    async def work() -> str | None:
        async with hub_database(settings) as db, db() as session:
            return (await load_keyring(session, master)).index_fingerprint(domain)

    try:
        found = run(work)
    except CryptoError as exc:
        fail(str(exc))
    if found is None:
        fail(f"this hub holds no blind-index key for {domain}")
    click.echo(found)


@click.command("export-index", help="Seal DOMAIN's blind-index key for the hub whose transfer key is PUBLICKEY.")
@DOMAIN
@click.option("--for", "recipient", required=True, metavar="PUBLICKEY", help="The receiving hub's `index-recipient`.")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write it here (default: stdout).")
def export_index(domain: str, recipient: str, output: Path | None) -> None:
    settings = settings_from_env()
    master = _master()

    async def work() -> bytes:
        async with hub_database(settings) as db, db() as session:
            return (await load_keyring(session, master)).index_key(domain)

    try:
        sealed = seal_index_key(domain, run(work), recipient)
    except (CryptoError, TransferError) as exc:
        fail(str(exc))
    if output is None:
        click.echo(sealed)
    else:
        output.write_text(sealed + "\n", encoding="utf-8")
        click.echo(f"wrote the sealed {domain} key to {output}; only the receiving hub's master key opens it")
    click.echo(
        f"the receiving hub can now compute {domain} indexes: it can tell whether a value is in this hub's data",
        err=True,
    )


@click.command("import-index", help="Store a blind-index key sealed for this hub by `export-index`.")
@click.argument("sealed_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--replace",
    is_flag=True,
    help="Replace a different key this hub holds (its stored indexes must then be recomputed).",
)
def import_index(sealed_file: Path, replace: bool) -> None:
    settings = settings_from_env()
    master = _master()
    try:
        domain, key = open_index_key(master, sealed_file.read_text(encoding="utf-8"))
    except TransferError as exc:
        fail(str(exc))

    async def work() -> str:
        async with hub_database(settings) as db, db() as session, session.begin():
            return await import_index_key(session, master, domain, key, replace=replace)

    try:
        outcome = run(work)
    except CryptoError as exc:
        fail(str(exc))
    click.echo(
        {
            "made": f"imported the blind-index key of {domain}",
            "same": f"this hub already holds that blind-index key of {domain}; nothing to do",
            "replaced": f"replaced the blind-index key of {domain}: recompute the stored {domain} indexes of this "
            "hub's departments before serving",
        }[outcome]
    )
