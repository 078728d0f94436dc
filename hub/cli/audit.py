"""`hub audit`: check the access trail, sign and show its tree head, prove an event, export the
signing key, and witness another hub's log. docs/audit.md gives the exit codes:
0 all is well, 1 the command could not run (a missing file, an unreachable hub), 2 the log is
not what it should be (tampering found, a truncated or rewritten log)."""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import click
import httpx
import orjson

from hub.audit.archive import Archived, ArchiveError, archive_range, open_archives
from hub.audit.archive import archive as archive_events
from hub.audit.heads import TreeHead, latest_head, sign_head
from hub.audit.merkle import leaf_hash, verify_inclusion
from hub.audit.tree import ProofError, inclusion
from hub.audit.verify import Report, verify_log
from hub.audit.witness import WitnessAlarm, witness
from hub.cli.base import fail, hub_database, run, settings_from_env
from hub.config import Settings
from hub.crypto.errors import KeyringError
from hub.crypto.keyring import load_keyring
from hub.crypto.master import master_key_from_settings
from hub.crypto.signing import TreeSigner, public_raw_from_pem

TAMPERED = 2


@click.group(help="The access trail: verify it, sign and show its head, prove an event, witness a hub.")
def audit() -> None:
    pass


async def _signer(settings: Settings) -> TreeSigner:
    master = master_key_from_settings(settings)
    async with hub_database(settings) as db, db() as session:
        return (await load_keyring(session, master)).tree_signer()


@audit.command(help="Recompute the whole log and report the first altered, deleted, inserted or moved event.")
@click.option("--public-key", "public_key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--archive",
    "archives",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An archive file written by `hub audit archive`; repeat for several.",
)
def verify(public_key: Path | None, archives: tuple[Path, ...]) -> None:
    settings = settings_from_env()
    try:
        given = None if public_key is None else public_raw_from_pem(public_key.read_text())
        opened = open_archives(list(archives))
    except (KeyringError, ArchiveError, OSError) as exc:
        fail(str(exc))

    async def work() -> Report:
        public = given if given is not None else (await _signer(settings)).public_raw
        async with hub_database(settings) as db:
            return await verify_log(db, public, opened)

    try:
        report = run(work)
    except ArchiveError as exc:
        fail(str(exc))
    click.echo(f"checked {report.events} of {report.size} events and {report.heads} signed tree heads")
    if report.archived:
        click.echo(
            f"{report.archived} events are archived; {report.from_archives} of them were read from archive files"
            + ("" if report.from_archives == report.archived else " (the rest taken from their stored hashes)")
        )
    if report.ok:
        click.echo("the log is intact")
        return
    for finding in report.findings[:20]:
        click.echo(f"{finding.kind}: {finding.message}")
    if len(report.findings) > 20:
        click.echo(f"... and {len(report.findings) - 20} more")
    sys.exit(TAMPERED)


@audit.command(help="Show the latest signed tree head; --sign signs the log's current size first.")
@click.option("--sign", is_flag=True, help="Sign a head of the current size now (if the log grew).")
def head(sign: bool) -> None:
    settings = settings_from_env()

    async def work() -> TreeHead | None:
        signer = await _signer(settings) if sign else None
        async with hub_database(settings) as db, db() as session, session.begin():
            if signer is not None:
                return await sign_head(session, signer)
            return await latest_head(session)

    found = run(work)
    if found is None:
        fail("no tree head is signed yet: `hub audit head --sign` signs one")
    click.echo(orjson.dumps(found.exported(), option=orjson.OPT_INDENT_2).decode())


@audit.command(help="Print the event at POSITION with its inclusion proof against the latest signed head, checked.")
@click.argument("position", type=click.IntRange(min=0))
def prove(position: int) -> None:
    settings = settings_from_env()

    async def work() -> dict[str, Any]:
        async with hub_database(settings) as db, db() as session:
            latest = await latest_head(session)
            if latest is None or latest.size <= position:
                fail(f"event {position} is not in a signed tree head yet: `hub audit head --sign` signs one")
            try:
                proof = await inclusion(session, position, latest.size)
            except ProofError as exc:
                fail(str(exc))
        if not verify_inclusion(position, latest.size, leaf_hash(proof.leaf), proof.path, latest.root):
            click.echo(f"the event at {position} is not in the signed tree of {latest.size} events", err=True)
            sys.exit(TAMPERED)
        return {
            "event": orjson.loads(proof.leaf),
            "leaf": base64.b64encode(proof.leaf).decode(),
            "auditPath": [base64.b64encode(h).decode() for h in proof.path],
            "treeHead": latest.exported(),
            "verified": True,
        }

    click.echo(orjson.dumps(run(work), option=orjson.OPT_INDENT_2).decode())


@audit.command(
    help="Move events older than --before to a JSON-lines file (with their tree heads) and out of the tables."
)
@click.option("--before", required=True, help="A date or time (ISO 8601; UTC unless it says otherwise).")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Say what would be archived; write and delete nothing.")
def archive(before: str, output: Path, dry_run: bool) -> None:
    settings = settings_from_env()
    try:
        moment = datetime.fromisoformat(before)
    except ValueError:
        fail(f"--before {before!r} is not an ISO 8601 date or time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    before_us = int(moment.timestamp() * 1_000_000)
    if output.exists() and not dry_run:
        fail(f"{output} exists; archives are never overwritten")

    async def plan() -> Archived:
        async with hub_database(settings) as db, db() as session:
            return await archive_range(session, before_us)

    async def work(handle: BinaryIO) -> Archived:
        async with hub_database(settings) as db:
            return await archive_events(db, before_us, handle)

    planned = run(plan)
    if planned.count == 0:
        click.echo(f"nothing to archive: no event before {moment.isoformat()} is left in the tables")
        return
    if dry_run:
        click.echo(f"dry run: would move events {planned.first} to {planned.end - 1} ({planned.count}) to {output}")
        return
    with output.open("xb") as handle:
        try:
            done = run(lambda: work(handle))
        except ArchiveError as exc:
            fail(str(exc))
    click.echo(
        f"moved events {done.first} to {done.end - 1} ({done.count}) to {output}; "
        "keep it: `hub audit verify --archive` reads it"
    )


@audit.command("public-key", help="Print the tree heads' Ed25519 public key (PEM), or write it to --output.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path))
def public_key(output: Path | None) -> None:
    settings = settings_from_env()
    pem = run(lambda: _signer(settings)).public_pem()
    if output is None:
        click.echo(pem, nl=False)
    else:
        output.write_text(pem)
        click.echo(f"wrote the public key to {output}")


@audit.command("witness", help="Check that a hub's log extends the last tree head seen (kept in --state).")
@click.option("--url", required=True, help="The hub's base URL, e.g. https://hub.example.gov")
@click.option("--public-key", "public_key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--state", required=True, type=click.Path(dir_okay=False, path_type=Path))
def witness_command(url: str, public_key: Path, state: Path) -> None:
    try:
        public = public_raw_from_pem(public_key.read_text())
        seen = TreeHead.parse(orjson.loads(state.read_bytes())) if state.exists() else None
    except (KeyringError, ValueError, orjson.JSONDecodeError) as exc:
        fail(f"{exc}")

    async def work() -> tuple[TreeHead, str]:
        async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=30) as client:

            async def fetch(path: str) -> Any:
                response = await client.get(path)
                response.raise_for_status()
                return response.json()

            try:
                return await witness(fetch, public, seen)
            except httpx.HTTPError as exc:
                fail(f"the hub at {url} could not be asked ({type(exc).__name__})")

    try:
        kept, line = run(work)
    except WitnessAlarm as alarm:
        click.echo(f"ALARM: {alarm}", err=True)
        sys.exit(TAMPERED)
    state.write_bytes(orjson.dumps(kept.exported(), option=orjson.OPT_INDENT_2))
    click.echo(line)
