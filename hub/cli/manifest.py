"""`hub manifest`: draft a department's manifest from its database."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
import yaml
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from hub.catalog import load_catalog
from hub.catalog.connections import ConnectionSetupError, connection_url
from hub.catalog.loader import ManifestError, build_catalog, parse_manifest
from hub.catalog.manifest import SNAKE, ConnectionDecl
from hub.cli.base import MANIFESTS_OPTION, fail, run, settings_from_env
from hub.onboarding.conformance import Mismatch, check_department
from hub.onboarding.draft import Draft, draft
from hub.onboarding.reflect import ReflectionError, reflect


@click.group(help="Draft and check department manifests.")
def manifest() -> None:
    pass


@manifest.command(
    "draft",
    help=(
        "Reflect a department database's tables and write a manifest draft: entities, keys, every column "
        "with its type, foreign keys as relations, guessed tiers and masks for personal data, and "
        "`decide:` comments where a person must choose. Reads the database URL from the environment "
        "variable --url-env names (the manifest names the same variable)."
    ),
)
@click.option("--url-env", required=True, help="Environment variable holding the department database URL.")
@click.option("--department", required=True, help="The department's name (lower case, e.g. housing).")
@click.option("--tables", "tables", multiple=True, help="Tables to draft (repeat, or comma-separated); default all.")
@click.option("--output", type=click.Path(path_type=Path), help="Write the draft here (default: standard output).")
@click.option(
    "--sample", default=200, show_default=True, type=click.IntRange(1, 100_000), help="Rows sampled per table."
)
def manifest_draft(url_env: str, department: str, tables: tuple[str, ...], output: Path | None, sample: int) -> None:
    write_draft(url_env, department, tables, output, sample)


def write_draft(url_env: str, department: str, tables: tuple[str, ...], output: Path | None, sample: int) -> None:
    """Draft `department`'s manifest from the database `url_env` names, and write it to
    `output` (standard output when None); any failure is one line and exit 1."""
    if not re.match(SNAKE, department):
        fail(f"--department {department!r}: use lower case letters, digits and _ (e.g. housing)")
    try:
        decl = ConnectionDecl(url_env=url_env)
    except ValueError:
        fail(f"--url-env {url_env!r}: name an environment variable in upper case (e.g. HOUSING_URL)")
    settings = settings_from_env()
    try:
        url = connection_url(decl, Path.cwd(), settings, department)
    except ConnectionSetupError as exc:
        fail(str(exc))
    wanted = [name.strip() for item in tables for name in item.split(",") if name.strip()]

    async def job() -> Draft:
        try:
            engine = create_async_engine(url)
        except Exception as error:
            # The driver or scheme is unknown; the URL is not repeated (it may hold a password).
            raise ConnectionSetupError(
                f"department {department}: {url_env} names no usable async driver ({type(error).__name__}); "
                "use e.g. postgresql+asyncpg://, mysql+asyncmy://, sqlite+aiosqlite://"
            ) from None
        try:
            found = await reflect(engine, wanted, sample)
        except (SQLAlchemyError, OSError) as error:
            raise ConnectionSetupError(
                f"department {department}: the database in {url_env} cannot be read ({type(error).__name__})"
            ) from None
        finally:
            await engine.dispose()
        return draft(department, url_env, found)

    try:
        result = run(job)
    except ReflectionError as exc:
        fail(str(exc))
    if not result.entities:
        fail(f"department {department}: no table can be drafted; " + "; ".join(result.notes))
    text = result.render()
    name = output.name if output is not None else f"{department}.yaml"
    try:
        build_catalog([(name, parse_manifest(name, yaml.safe_load(text)))])
    except ManifestError as exc:
        # A draft that does not load is this command's fault: say so rather than write it.
        fail(f"the draft does not load, please report it: {exc}")
    for note in result.notes:
        click.echo(f"note: {note}, left out", err=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output} ({len(result.entities)} entities); review its `decide:` comments", err=True)


@manifest.command(
    "check",
    help=(
        "Check each manifest against its live database: tables and columns exist, types fit, each key is "
        "the primary key or unique, blind-index columns sit beside encrypted ones. Prints one line per "
        "mismatch and exits 1 when there is any. Reads HUB_MANIFESTS and the URL variables manifests name."
    ),
)
@MANIFESTS_OPTION
@click.option("--department", "departments", multiple=True, help="Check only this department (repeat).")
def manifest_check(manifests: Path | None, departments: tuple[str, ...]) -> None:
    settings = settings_from_env(manifests_dir=manifests)
    try:
        catalog = load_catalog(settings.manifests_dir)
    except ManifestError as exc:
        fail(str(exc))
    unknown = [name for name in departments if name not in catalog.departments]
    if unknown:
        known = ", ".join(sorted(catalog.departments))
        fail(f"unknown department {', '.join(unknown)} (the manifests declare: {known})")
    chosen = list(departments) or sorted(catalog.departments)

    async def job() -> list[str]:
        problems: list[str] = []
        for name in chosen:
            decl = catalog.departments[name].connection
            url = connection_url(decl, settings.manifests_dir, settings, name)
            engine = create_async_engine(url)
            try:
                found: list[Mismatch] = await check_department(catalog, name, engine)
            except (SQLAlchemyError, OSError) as error:
                problems.append(f"department {name}: its database cannot be reached ({type(error).__name__})")
                continue
            finally:
                await engine.dispose()
            problems += [str(item) for item in found]
            if not found:
                entities = len(catalog.departments[name].entities)
                click.echo(f"department {name}: matches its database ({entities} entities)")
        return problems

    problems = run(job)
    for line in problems:
        click.echo(f"error: {line}", err=True)
    if problems:
        sys.exit(1)
