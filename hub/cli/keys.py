"""`hub keys`: the key material of the hub database (status, rotation, rewrapping under a new
master key, backup and restore; `reencrypt` is attached from hub.cli.maintenance). Every command
shows progress, offers a dry run, ends with a summary, and fails with one clear line and a
non-zero exit. No command prints a key's bytes: keys are named by purpose, scope, version and the
id of their master key.

docs/keys.md is the operator's guide to these commands."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click
from tqdm import tqdm

from hub.audit.admin import CLI_DEPARTMENT, AdminAction, cli_actor, record_admin
from hub.cli.base import fail, hub_database, run, settings_from_env
from hub.config import Settings
from hub.crypto.backup import Backup, backup_keys, restore_keys
from hub.crypto.backup_file import read_backup_file, write_backup_file
from hub.crypto.errors import CryptoError, MasterKeyError
from hub.crypto.inventory import Inventory, KeyEntry, take_inventory
from hub.crypto.master import MasterKey, create_master_key_file, master_key_from_settings, read_master_key_file
from hub.crypto.rewrap import RewrapProgress
from hub.crypto.rewrap import rewrap as rewrap_keys
from hub.crypto.rotation import Rotation, plan_rotation, rotate

T = TypeVar("T")


@click.group(help="Rotate, re-encrypt, rewrap, back up and restore the hub's keys.")
def keys() -> None:
    pass


OLD_KEY_FILES = click.option(
    "--old-key-file",
    "old_key_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The owner-only file of an older master key that still wraps some keys; repeat for several.",
)
DRY_RUN = click.option("--dry-run", is_flag=True, help="Check and report what would be done; write nothing.")


# --- status -------------------------------------------------------------------------------


@keys.command(help="List every key, the master key wrapping it, and whether the configured master key opens it.")
@OLD_KEY_FILES
def status(old_key_files: tuple[Path, ...]) -> None:
    settings = settings_from_env()

    masters = _masters(settings, old_key_files, required=False)

    async def work() -> Inventory:
        async with hub_database(settings) as db, db() as session:
            return await take_inventory(session, masters)

    inventory = _run(work)
    if not inventory.keys:
        click.echo("the hub database holds no keys yet: the hub makes them when it first starts with manifests")
        click.echo("that encrypt fields, or restore a key backup with `hub keys restore`")
        return
    checked = bool(inventory.checked_with)
    _table(
        ["purpose", "scope", "version", "master key", "created", *(["opens"] if checked else [])],
        [_status_row(key, checked) for key in inventory.keys],
    )
    click.echo("")
    versions = inventory.data_versions
    click.echo(f"current data-key versions ({len(versions)} departments):")
    for department, version in versions.items():
        click.echo(f"  {department}: v{version}")
    wraps = ", ".join(f"{key_id} wraps {count}" for key_id, count in inventory.by_master.items())
    click.echo(f"master keys: {wraps}")
    if not checked:
        fail("no master key configured (HUB_MASTER_KEY or HUB_MASTER_KEY_FILE): the keys were not checked")
    problems = inventory.problems
    if problems:
        fail(
            f"{len(problems)} of {len(inventory.keys)} keys do not open under master key(s) "
            f"{', '.join(inventory.checked_with)}; first: {problems[0].problem}"
        )
    click.echo(f"all {len(inventory.keys)} keys open under master key(s) {', '.join(inventory.checked_with)}")


def _status_row(key: KeyEntry, checked: bool) -> list[str]:
    row = [key.purpose, key.scope, str(key.version), key.master_key_id, f"{key.created_at:%Y-%m-%d %H:%M:%S} UTC"]
    if checked:
        row.append("yes" if key.problem is None else "NO")
    return row


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# --- rotate -------------------------------------------------------------------------------


@keys.command("rotate", help="Add a new data-key version for departments (all with a data key by default).")
@click.option("--department", "departments", multiple=True, help="Rotate only this department; repeat for several.")
@DRY_RUN
def rotate_command(departments: tuple[str, ...], dry_run: bool) -> None:
    settings = settings_from_env()

    master = _local(lambda: master_key_from_settings(settings))

    async def work() -> list[Rotation]:
        async with hub_database(settings) as db, db() as session, session.begin():
            # One transaction for every department: killed or failed, it added nothing or all.
            plan = await plan_rotation(session, master, departments)
            if dry_run or not plan:
                return plan
            with _bar(len(plan), "rotating", " departments") as bar:

                def advance(_: Rotation) -> None:
                    bar.update()

                done = await rotate(session, master, plan, advance)
            rotated = [{"op": "rotate", "department": r.department, "from": r.old, "to": r.new} for r in done]
            action = AdminAction(
                "keys.rotate",
                cli_actor(),
                CLI_DEPARTMENT,
                "applied",
                target="data keys",
                edits=rotated,
                concerns=frozenset({CLI_DEPARTMENT, *(r.department for r in done)}),
            )
            await record_admin(session, action, settings.audit.enabled)
            return done

    plan = _run(work)
    if not plan:
        click.echo("nothing to rotate: no department has a data key yet")
        return
    for step in plan:
        click.echo(f"{step.department}: data key v{step.old} -> v{step.new}")
    if dry_run:
        click.echo(f"dry run: would add a data-key version for {len(plan)} department(s); nothing was written")
        return
    click.echo(f"rotated the data keys of {len(plan)} department(s) in one transaction")
    click.echo("next: run `hub keys reencrypt` to move stored values to the new versions (values under older")
    click.echo("versions still decrypt until then); running hubs encrypt under the new versions once they")
    click.echo("reload their keys (restart them or wait for reload); then back up: `hub keys backup --output FILE`")


# --- rewrap -------------------------------------------------------------------------------


@keys.command(help="Move every key under a new master key, in batches; run it again to finish an interrupted run.")
@click.option(
    "--new-key-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The owner-only file of the new master key (make one with `hub keys new-master-key`).",
)
@OLD_KEY_FILES
@DRY_RUN
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(min=1), help="Keys per transaction.")
def rewrap(new_key_file: Path, old_key_files: tuple[Path, ...], dry_run: bool, batch_size: int) -> None:
    settings = settings_from_env()

    masters = _masters(settings, old_key_files, required=True)
    new = _local(lambda: read_master_key_file(new_key_file))

    async def work() -> tuple[Inventory, int]:
        async with hub_database(settings) as db:
            # Every key must open before any moves: a key no given master opens would stop the
            # run halfway, with the hub needing both master keys until someone finds the third.
            async with db() as session:
                before = await take_inventory(session, [*masters, new])
            before.require_open()
            todo = sum(count for key_id, count in before.by_master.items() if key_id != new.id)
            if dry_run or not todo:
                return before, 0
            with _bar(todo, "rewrapping", " keys") as bar:

                def advance(step: RewrapProgress) -> None:
                    bar.update(step.rewrapped)

                moved = await rewrap_keys(db, masters, new, batch_size, advance)
            # Rewrapping runs in batches of its own; its event follows the last one.
            async with db() as session, session.begin():
                action = AdminAction(
                    "keys.rewrap",
                    cli_actor(),
                    CLI_DEPARTMENT,
                    "applied",
                    target=f"master key {new.id}",
                    edits=[{"op": "rewrap", "to": new.id, "keys": moved}],
                    concerns=frozenset({"*"}),
                )
                await record_admin(session, action, settings.audit.enabled)
            return before, moved

    before, moved = _run(work)
    old_ids = sorted(key_id for key_id in before.by_master if key_id != new.id)
    total = len(before.keys)
    if not old_ids:
        click.echo(f"nothing to rewrap: all {total} keys are already under master key {new.id}")
    elif dry_run:
        todo = total - before.by_master.get(new.id, 0)
        click.echo(
            f"dry run: would move {todo} of {total} keys from master key(s) {', '.join(old_ids)} to {new.id}; "
            "every key opens; nothing was written"
        )
        return
    else:
        click.echo(f"moved {moved} keys from master key(s) {', '.join(old_ids)} to {new.id}; all {total} keys")
        click.echo(f"are now under master key {new.id}")
    if _is_configured(settings) and masters[0].id == new.id:
        return
    click.echo(f"next: on every hub instance, set HUB_MASTER_KEY_FILE={new_key_file} (or HUB_MASTER_KEY to its")
    click.echo("contents) and restart it; keep the old master key until every instance has switched and no key")
    click.echo("backup made under it is needed; then back up: `hub keys backup --output FILE`")


@keys.command("new-master-key", help="Make a new master key in a new owner-only file (mode 0600).")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def new_master_key(path: Path) -> None:
    try:
        key = create_master_key_file(path)
    except MasterKeyError as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot create {path}: {error.strerror or type(error).__name__}")
    click.echo(f"made master key {key.id} in {path} (mode 0600, readable by its owner only)")
    click.echo("keep a copy offline and apart from the hub database and its backups (see docs/keys.md);")
    click.echo(f"to move the hub's keys under it: hub keys rewrap --new-key-file {path}")


# --- backup and restore -------------------------------------------------------------------


@keys.command(help="Write every wrapped key to a new owner-only JSON file (no key in plain).")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="A new file.")
@OLD_KEY_FILES
@DRY_RUN
def backup(output: Path, old_key_files: tuple[Path, ...], dry_run: bool) -> None:
    settings = settings_from_env()

    # A host that makes backups need not hold the master key; with one, a backup that could not
    # be restored is never written.
    masters = _masters(settings, old_key_files, required=False)
    if output.exists():
        fail(f"{output} already exists; refusing to replace it (name a new file)")

    async def work() -> Backup:
        async with hub_database(settings) as db, db() as session:
            return await backup_keys(session, masters)

    document = _run(work)
    if not document.keys:
        fail("the hub database holds no keys: nothing to back up (is HUB_DATABASE_URL right?)")
    if not dry_run:
        _local(lambda: write_backup_file(output, document))
    needs = ", ".join(document.master_key_ids)
    if masters:
        opened = ", ".join(m.id for m in masters)
        click.echo(f"checked: all {len(document.keys)} keys open under master key(s) {opened}")
    else:
        click.echo("not checked: no master key configured (HUB_MASTER_KEY or HUB_MASTER_KEY_FILE)")
    if dry_run:
        click.echo(f"dry run: would write {_describe(document)} to {output}; nothing was written")
        return
    click.echo(f"wrote {_describe(document)} to {output} (mode 0600)")
    click.echo(f"it is useless without master key(s) {needs}: keep them, apart from this file, for as long as")
    click.echo("this backup is kept (see docs/keys.md)")


@keys.command(help="Restore a key backup into an empty hub database, once every key opens under the master key(s).")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@OLD_KEY_FILES
@DRY_RUN
def restore(file: Path, old_key_files: tuple[Path, ...], dry_run: bool) -> None:
    settings = settings_from_env()

    masters = _masters(settings, old_key_files, required=True)
    document = _local(lambda: read_backup_file(file))
    opened = ", ".join(m.id for m in masters)
    click.echo(f"checking {len(document.keys)} keys from {file} against master key(s) {opened}", err=True)

    async def work() -> None:
        async with hub_database(settings) as db, db() as session:
            # One transaction: killed or failed, the hub database is left empty, and a new run
            # starts over.
            await restore_keys(session, document, masters)
            if dry_run:
                await session.rollback()
            else:
                await session.commit()

    _run(work)
    if dry_run:
        click.echo(f"dry run: every key opens under master key(s) {opened}; would restore {_describe(document)}")
        click.echo("into the empty hub database; nothing was written")
        return
    click.echo(f"restored {_describe(document)} from {file}; every key opens under master key(s) {opened}")
    elsewhere = [key_id for key_id in document.master_key_ids if key_id != masters[0].id]
    if elsewhere:
        click.echo(f"the keys under master key(s) {', '.join(elsewhere)} need that key configured to be used; to move")
        click.echo("them under the configured one: hub keys rewrap --new-key-file CONFIGURED --old-key-file OLD")


def _describe(document: Backup) -> str:
    data = [k for k in document.keys if k.purpose == "data"]
    departments = len({k.scope for k in data})
    others = len(document.keys) - len(data)
    return (
        f"{len(document.keys)} keys ({len(data)} data keys of {departments} departments, "
        f"{others} index/mask/signing keys)"
    )


# --- shared -------------------------------------------------------------------------------


def _is_configured(settings: Settings) -> bool:
    return settings.master_key is not None or settings.master_key_file is not None


def _masters(settings: Settings, old_key_files: Iterable[Path], *, required: bool) -> list[MasterKey]:
    """The configured master key first (new keys go under it), then the older ones given. Key
    files are refused unless only their owner can read and write them."""

    def read() -> list[MasterKey]:
        configured = [master_key_from_settings(settings)] if _is_configured(settings) else []
        found: dict[str, MasterKey] = {}
        for master in (*configured, *(read_master_key_file(path) for path in old_key_files)):
            found.setdefault(master.id, master)
        if required and not found:
            raise MasterKeyError("no master key: set HUB_MASTER_KEY (base64 of 32 bytes) or HUB_MASTER_KEY_FILE")
        return list(found.values())

    return _local(read)


def _local(work: Callable[[], T]) -> T:
    """Work on local files (key files, backups), failing with one line like the rest."""
    try:
        return work()
    except CryptoError as error:
        fail(str(error))


def _run(work: Callable[[], Awaitable[T]]) -> T:
    try:
        return run(work)
    except KeyboardInterrupt:
        fail("interrupted: what was committed stays; run the same command again to finish")


def _bar(total: int, description: str, unit: str) -> tqdm[Any]:
    return tqdm(total=total, desc=description, unit=unit, file=sys.stderr, leave=True)
