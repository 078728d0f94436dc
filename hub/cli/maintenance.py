"""`hub encrypt-column` and `hub keys reencrypt`: the commands that write to a department's own
database.

They write through the separate write capability (`connectors.sql.writer`), opened on a URL the
operator names for the occasion with `--write-url-env NAME`: the name of an environment variable
holding the URL (of a user that may alter and update the tables), so a password never sits on
the command line or in shell history. The read-only connections the hub serves with are never
used to write. Each command shows progress, offers a dry run, ends with a summary, and exits
non-zero with one clear line when it fails or leaves something undone; killed at any moment, it
is finished by running it again.

`encrypt-column` is registered by hub.cli; importing this module attaches `reencrypt` to the
`keys` group of hub.cli.keys.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from sqlalchemy.engine import URL, make_url
from tqdm import tqdm

from hub.catalog import Catalog, EntityInfo, ManifestError, load_catalog
from hub.catalog.manifest import Storage
from hub.cli.base import fail, hub_database, run, settings_from_env
from hub.config import Settings
from hub.crypto.errors import KeyringError
from hub.crypto.keyring import Keyring, current_data_version, load_keyring, provision
from hub.crypto.master import master_key_from_settings
from hub.maintenance.base import MaintenanceError, Progress

if TYPE_CHECKING:
    # Imported where used: the write capability (and alembic with it) loads only for these
    # commands, not for every `hub` command.
    from hub.maintenance.encrypt_column import EncryptionPlan, EncryptionReport
    from hub.maintenance.reencrypt import Census, FieldReport

T = TypeVar("T")

WRITE_URL_ENV = click.option(
    "--write-url-env",
    "write_url_env",
    required=True,
    metavar="NAME",
    help="The environment variable holding the URL to write with (a user that may alter and update the "
    "department's tables); named, so the password stays off the command line.",
)
BATCH_SIZE = click.option(
    "--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000), help="Rows per transaction."
)
DRY_RUN = click.option("--dry-run", is_flag=True, help="Report what would be done; write nothing.")
MANIFESTS = click.option(
    "--manifests", type=click.Path(path_type=Path), help="Manifest folder (default HUB_MANIFESTS)."
)


# --- encrypt-column -----------------------------------------------------------------------


@click.command(
    "encrypt-column",
    help="Encrypt a plain column of a department's table in place: add the encrypted column (and the blind "
    "index) beside it, fill them in batches (resumable: run it again after an interruption), verify every row, "
    "and drop the plain column only with --drop-plain. FIELD is the field's name in the manifest, which still "
    "declares it plain; the command prints the manifest lines to change afterwards.",
)
@click.argument("department")
@click.argument("entity")
@click.argument("field")
@WRITE_URL_ENV
@click.option("--index-domain", help="Keep a blind index of this domain (resident_id, mobile, ...) beside it.")
@click.option(
    "--stored-as",
    type=click.Choice(["binary", "text"]),
    default="binary",
    show_default=True,
    help="binary (BYTEA/BLOB) or text (`hub1:` base64 and a hex index) for databases that cannot hold bytes.",
)
@click.option("--encrypted-column", help="The new column's name (default <column>_enc).")
@click.option("--index-column", help="The index column's name (default <column>_bidx).")
@BATCH_SIZE
@DRY_RUN
@click.option(
    "--refill",
    is_flag=True,
    help="Encrypt again, from the plain value, rows whose encrypted value does not match it (an app kept "
    "writing the plain column meanwhile).",
)
@click.option(
    "--drop-plain",
    is_flag=True,
    help="After a verification without a mismatch, drop the plain column. Only once nothing writes it any more.",
)
@MANIFESTS
def encrypt_column(
    department: str,
    entity: str,
    field: str,
    write_url_env: str,
    index_domain: str | None,
    stored_as: str,
    encrypted_column: str | None,
    index_column: str | None,
    batch_size: int,
    dry_run: bool,
    refill: bool,
    drop_plain: bool,
    manifests: Path | None,
) -> None:
    from connectors.sql.writer import TableWriter
    from hub.maintenance.encrypt_column import check_table, plan_encryption
    from hub.maintenance.encrypt_column import encrypt_column as run_encryption

    settings = settings_from_env(manifests_dir=manifests)
    catalog = _catalog(settings)
    info = _entity(catalog, department, entity)
    plan = _guard(
        lambda: plan_encryption(
            info,
            field,
            domain=index_domain,
            stored_as=Storage(stored_as),
            column=encrypted_column,
            index_column=index_column,
        )
    )
    url = _write_url(settings, write_url_env)

    async def work() -> tuple[EncryptionReport, list[str]]:
        writer = TableWriter(url, info.table.name, plan.key_column)
        try:
            # Keys are made only for a table found fit, so a mistyped command leaves none behind.
            fit = await check_table(writer, plan, drop_plain=drop_plain)
            keyring, made = (None, []) if dry_run or fit is None else await _provisioned(settings, plan)
            with _Bars() as bars:
                report = await run_encryption(
                    writer,
                    plan,
                    keyring,
                    batch_size=batch_size,
                    dry_run=dry_run,
                    refill=refill,
                    drop_plain=drop_plain,
                    progress=bars,
                )
            return report, made
        finally:
            await writer.close()

    report, made = _run(work)
    if made:
        click.echo(f"made {', '.join(made)} in the hub database (back them up: `hub keys backup`)")
    _encryption_summary(plan, report, catalog.departments[department].source, dry_run, drop_plain)


def _encryption_summary(
    plan: EncryptionPlan, report: EncryptionReport, source: str, dry_run: bool, drop_plain: bool
) -> None:
    name = f"{plan.entity.id}.{plan.plain.name}"
    table = plan.entity.table.name
    if report.already_dropped:
        click.echo(f"{table} has {plan.target.column} and no longer {plan.plain.column}: {name} was encrypted and")
        click.echo("its plain column dropped by an earlier run; nothing to do")
        _manifest_lines(plan, source)
        return
    if report.ddl:
        click.echo("DDL (would run):" if dry_run else "DDL run:")
        for statement in report.ddl:
            click.echo(f"  {statement}")
    if dry_run:
        click.echo(
            f"dry run: {table} has {report.rows} rows, {report.to_fill} of them with a plain {plan.plain.column} "
            f"to encrypt into {plan.target.column}; nothing was written"
        )
        return
    click.echo(f"{name}: {report.to_fill} rows to encrypt into {plan.target.column}, {report.filled} encrypted")
    if report.refilled:
        click.echo(f"encrypted again from the plain value: {report.refilled} rows that did not match")
    if report.mismatches:
        total = sum(report.mismatches.values())
        click.echo(f"verified {report.verified} rows: {total} do not match the plain column")
        for kind, count in report.mismatches.most_common():
            click.echo(f"  {count}: {kind.value}")
        fail(
            f"{total} rows of {table} do not match their plain values; the plain column is kept. If an app still "
            "writes the plain column, run again with --refill (the plain value wins)"
        )
    click.echo(f"verified {report.verified} rows: every encrypted value decrypts to its plain value")
    if report.dropped:
        click.echo(f"dropped the plain column {plan.plain.column} of {table}")
    elif not drop_plain:
        click.echo(f"the plain column {plan.plain.column} is kept: drop it with --drop-plain once nothing writes it")
    _manifest_lines(plan, source)


def _manifest_lines(plan: EncryptionPlan, source: str) -> None:
    click.echo(f"now change the field in its manifest ({source}, entity {plan.entity.name}, field {plan.plain.name}):")
    for line in plan.manifest_lines():
        click.echo(f"  {line}")


async def _provisioned(settings: Settings, plan: EncryptionPlan) -> tuple[Keyring, list[str]]:
    """The keyring, after making the department's data key and the index domain's key if missing."""
    master = master_key_from_settings(settings)
    domains = [plan.target.blind_index] if plan.target.blind_index else []
    async with hub_database(settings) as db:
        async with db() as session, session.begin():
            made = await provision(session, master, [plan.entity.department], domains)
        async with db() as session:
            return await load_keyring(session, master), made


# --- keys reencrypt -----------------------------------------------------------------------


@click.command(
    "reencrypt",
    help="Re-encrypt a department's encrypted columns under its current data-key version (after `hub keys "
    "rotate`), in batches, while the hub keeps serving. A value changed meanwhile is never overwritten (it is "
    "read again and retried); a value that does not decrypt is reported and left as it is. Run it again "
    "after an interruption to finish.",
)
@click.option("--department", required=True, help="The department whose tables to re-encrypt.")
@WRITE_URL_ENV
@click.option("--field", "fields", multiple=True, metavar="ENTITY.FIELD", help="Only this field; repeat for several.")
@BATCH_SIZE
@DRY_RUN
@MANIFESTS
def reencrypt(
    department: str,
    write_url_env: str,
    fields: tuple[str, ...],
    batch_size: int,
    dry_run: bool,
    manifests: Path | None,
) -> None:
    from hub.maintenance.reencrypt import census_fields, encrypted_fields, reencrypt_fields

    settings = settings_from_env(manifests_dir=manifests)
    catalog = _catalog(settings)
    _department(catalog, department)
    chosen = _guard(lambda: encrypted_fields((e for e in catalog if e.department == department), fields))
    if not chosen:
        click.echo(f"{department} declares no encrypted field: nothing to re-encrypt")
        return
    url = _write_url(settings, write_url_env)

    async def work() -> tuple[int, list[Census], list[FieldReport]]:
        current, keyring = await _current(settings, department, load=not dry_run)
        if keyring is None:
            return current, await census_fields(url, chosen, batch_size), []
        with _Bars() as bars:
            return current, [], await reencrypt_fields(url, keyring, chosen, batch_size=batch_size, progress=bars)

    current, censuses, reports = _run(work)
    if dry_run:
        _census_summary(department, current, censuses)
    else:
        _reencrypt_summary(department, current, reports)


def _census_summary(department: str, current: int, censuses: list[Census]) -> None:
    old = 0
    for found in censuses:
        versions = ", ".join(f"v{v}: {n}" for v, n in sorted(found.versions.items())) or "no values"
        malformed = f", {found.malformed} not encrypted values" if found.malformed else ""
        click.echo(f"{found.entity}.{found.field}: {versions}{malformed}")
        old += sum(n for v, n in found.versions.items() if v < current)
    click.echo(f"dry run: the current data-key version of {department} is v{current}; {old} values would be")
    click.echo("re-encrypted; nothing was written")


def _reencrypt_summary(department: str, current: int, reports: list[FieldReport]) -> None:
    unreadable: list[str] = []
    unfinished: list[str] = []
    for report in reports:
        name = f"{report.entity}.{report.field}"
        line = (
            f"{name}: {report.reencrypted} re-encrypted to v{report.current}, {report.up_to_date} already at v{current}"
        )
        if report.changed_meanwhile:
            line += f", {report.changed_meanwhile} changed meanwhile (read again and retried)"
        click.echo(line)
        for failure, count in report.failures.most_common():
            click.echo(f"  {count} not re-encrypted, left as they are: {failure.value}")
        if report.examples:
            click.echo(f"  for example the rows keyed {', '.join(sorted(report.examples))}")
        if report.failures:
            unreadable.append(f"{sum(report.failures.values())} values of {name} do not decrypt")
        if report.left:
            unfinished.append(f"{report.left} values of {name} kept changing")
        if report.newer:
            unfinished.append(f"{report.newer} values of {name} are under a version newer than v{current}")
    problems = []
    if unreadable:
        problems.append(
            "; ".join(unreadable) + " (left as they are: the hub reports them as DATA_INTEGRITY; restore them "
            "from a backup of the department's database, or write them anew)"
        )
    if unfinished:
        problems.append("; ".join(unfinished) + ": run the command again to finish")
    if problems:
        fail("; ".join(problems))
    click.echo(f"every encrypted value read in {department} is now under data-key version v{current}")


async def _current(settings: Settings, department: str, *, load: bool) -> tuple[int, Keyring | None]:
    """The department's current data-key version, and (unless only counting) the keyring."""
    master = master_key_from_settings(settings) if load else None
    async with hub_database(settings) as db, db() as session:
        current = await current_data_version(session, department)
        if current is None:
            raise KeyringError(f"{department} has no data key in the hub database: nothing was encrypted under one")
        return current, (await load_keyring(session, master) if master is not None else None)


# --- shared -------------------------------------------------------------------------------


def _catalog(settings: Settings) -> Catalog:
    try:
        return load_catalog(settings.manifests_dir)
    except ManifestError as error:
        fail(str(error))


def _department(catalog: Catalog, department: str) -> None:
    if department not in catalog.departments:
        fail(f"no department {department} in the manifests (departments: {', '.join(sorted(catalog.departments))})")


def _entity(catalog: Catalog, department: str, name: str) -> EntityInfo:
    _department(catalog, department)
    found = catalog.entities.get(f"{department}.{name}")
    if found is None:
        names = sorted(e.name for e in catalog if e.department == department)
        fail(f"{department} has no entity {name} (entities: {', '.join(names)})")
    return found


def _write_url(settings: Settings, name: str) -> URL:
    value = settings.secret(name)
    if not value:
        fail(f"the environment variable {name} (--write-url-env) is not set")
    try:
        url = make_url(value)
    except Exception:
        fail(f"{name} does not hold a database URL")
    if url.get_backend_name() not in ("sqlite", "postgresql", "mysql", "mariadb"):
        fail(f"{name} names a {url.get_backend_name()} database: only SQLite, PostgreSQL and MariaDB/MySQL are written")
    return url


def _guard(work: Callable[[], T]) -> T:
    try:
        return work()
    except MaintenanceError as error:
        fail(str(error))


def _run(work: Callable[[], Awaitable[T]]) -> T:
    from connectors.sql.writer import WriteError

    try:
        return run(work)
    except WriteError as error:
        fail(f"{error}; once that is fixed, run the command again: it continues where it stopped")
    except MaintenanceError as error:
        fail(str(error))
    except KeyboardInterrupt:
        fail("interrupted: every finished batch is kept; run the same command again to continue")


class _Bars:
    """One tqdm bar per step, on stderr, as the maintenance functions report progress."""

    def __init__(self) -> None:
        self._bars: dict[str, tqdm[Any]] = {}

    def __enter__(self) -> Progress:
        return self.update

    def __exit__(self, *_: object) -> None:
        for bar in self._bars.values():
            bar.close()

    def update(self, label: str, done: int, total: int) -> None:
        bar = self._bars.get(label)
        if bar is None:
            bar = self._bars[label] = tqdm(total=total, desc=label, unit=" rows", file=sys.stderr, leave=True)
        if total != bar.total:
            bar.total = total
        bar.update(done - bar.n)
