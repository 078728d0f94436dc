"""`hub documents`: register, list and remove trusted documents.

Part of the command line (the composition root): registering checks each document against
the schema built from the manifests, so a document that could not run is refused at the door
with the validation errors, not at its first request. Its cost (schema/demand.py) is computed
once, here: printed beside its id, and a document costing more than the most generous role may
run (HUB_MAX_COST and its per-role overrides) is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hub.audit.admin import CLI_DEPARTMENT, AdminAction, cli_actor, record_admin
from hub.catalog import ManifestError, load_catalog
from hub.cli.base import fail, hub_database, run, settings_from_env
from hub.trusted.service import DocumentError, document_id, list_documents, register_document, remove_document
from schema import BuiltSchema, Compiled, build_schema

MAX_DOCUMENT_BYTES = 100_000


@click.group(help="Register GraphQL documents that apps may then run by id (trusted documents).")
def documents() -> None:
    pass


def _read(file: Path) -> str:
    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    if len(data) > MAX_DOCUMENT_BYTES:
        fail(f"{file} is over {MAX_DOCUMENT_BYTES} bytes; a trusted document is one operation document")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{file} is not UTF-8 text")


@documents.command("register", help="Check FILE(s) against the schema and register each; prints the ids.")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--name", help="A name for the document (default: the file's name without .graphql).")
@click.option("--dry-run", is_flag=True, help="Check only; register nothing.")
def documents_register(files: tuple[Path, ...], name: str | None, dry_run: bool) -> None:
    if name is not None and len(files) > 1:
        fail("--name names one document; register several files without it")
    settings = settings_from_env()
    try:
        built = build_schema(load_catalog(settings.manifests_dir), settings)
    except ManifestError as exc:
        fail(str(exc))
    texts: list[tuple[Path, str, str]] = []
    problems: list[str] = []
    for file in files:
        text = _read(file)
        compiled = built.compiler.compile_uncached(text)
        for error in compiled.errors:
            where = "".join(f":{loc.line}:{loc.column}" for loc in (error.locations or [])[:1])
            problems.append(f"{file}{where}: {error.message}")
        cost, too_costly = _cost(built, compiled)
        if not compiled.errors and too_costly is not None:
            problems.append(f"{file}: {too_costly}")
        texts.append((file, text, cost))
    if problems:
        fail("nothing registered; fix these first:\n" + "\n".join(problems))
    if dry_run:
        for file, text, cost in texts:
            click.echo(f"{document_id(text)}\t{file}\t{cost} (valid; not registered: --dry-run)")
        return

    async def work() -> list[str]:
        async with hub_database(settings) as db, db() as session, session.begin():
            ids = [
                await register_document(session, text, name=name or file.name.removesuffix(".graphql"))
                for file, text, _ in texts
            ]
            for id_ in ids:
                await _recorded(session, "document.register", id_, settings.audit.enabled)
            return ids

    try:
        ids = run(work)
    except DocumentError as exc:
        fail(str(exc))
    for (file, _, cost), id_ in zip(texts, ids, strict=True):
        click.echo(f"{id_}\t{file}\t{cost}")


async def _recorded(session: Any, name: str, id_: str, enabled: bool) -> None:
    """The trail's admin event of a trusted document registered or removed (every department's
    callers may run it: it concerns all)."""
    action = AdminAction(name, cli_actor(), CLI_DEPARTMENT, "applied", target=id_, concerns=frozenset({"*"}))
    await record_admin(session, action, enabled)


def _cost(built: BuiltSchema, compiled: Compiled) -> tuple[str, str | None]:
    """The cost of each operation as printed, with its page-size variables at their defaults
    (and at the largest page, where it has any); and why the document is refused, if one costs
    more at its defaults than the most generous role may run."""
    limits = built.limits
    assert limits.pages is not None
    most = limits.settings.largest_limit("cost")
    printed: list[str] = []
    refused: str | None = None
    for demand in compiled.demands:
        cost = demand.cost(limits.pages, {})
        text = f"cost {cost}"
        variables = sorted(demand.variable_pages())
        if variables:
            largest = demand.cost(limits.pages, dict.fromkeys(variables, limits.pages.max_page))
            shown = ", ".join(f"${v}" for v in variables)
            text += f" ({shown} at defaults; {largest} at {limits.pages.max_page})"
        printed.append(text if len(compiled.demands) == 1 else f"{demand.operation}: {text}")
        if cost > most and refused is None:
            what = "the operation" if demand.operation is None else f"the operation {demand.operation!r}"
            refused = (
                f"{what} costs {cost} with its page sizes at their defaults; no caller may run more than {most} "
                "(HUB_MAX_COST and its per-role overrides)"
            )
    return "; ".join(printed), refused


@documents.command("list", help="List the trusted documents (with --all, removed ones too).")
@click.option("--all", "show_all", is_flag=True)
def documents_list(show_all: bool) -> None:
    settings = settings_from_env()

    async def work() -> list[str]:
        async with hub_database(settings) as db, db() as session:
            listing = await list_documents(session, removed=show_all)
        return [
            f"{d.id}\t{d.name}\t{d.size} bytes\tregistered {d.registered_at:%Y-%m-%d %H:%M}"
            + (f"\tremoved {d.removed_at:%Y-%m-%d %H:%M}" if d.removed_at else "")
            for d in listing
        ]

    lines = run(work)
    click.echo("\n".join(lines) if lines else "no trusted documents")


@documents.command("remove", help="Stop running the document ID (running instances stop within 5 s).")
@click.argument("id_", metavar="ID")
def documents_remove(id_: str) -> None:
    settings = settings_from_env()

    async def work() -> None:
        async with hub_database(settings) as db, db() as session, session.begin():
            await remove_document(session, id_)
            await _recorded(session, "document.remove", id_, settings.audit.enabled)

    try:
        run(work)
    except DocumentError as exc:
        fail(str(exc))
    click.echo(f"removed {id_}")
