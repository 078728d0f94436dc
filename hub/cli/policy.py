"""`hub policy`: export, import and test the access policy kept in the hub database."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TypeVar

import click

from hub.catalog import ManifestError, load_catalog
from hub.cli.base import MANIFESTS_OPTION, fail, hub_database, run, settings_from_env
from hub.config import Settings

T = TypeVar("T")


@click.group(help="Export, import and test the access policy kept in the hub database.")
def policy() -> None:
    pass


def manifest_catalog(manifests: Path | None) -> Any:
    settings = settings_from_env(manifests_dir=manifests)
    try:
        return settings, load_catalog(settings.manifests_dir)
    except ManifestError as exc:
        fail(str(exc))


def current_snapshot(settings: Settings, catalog: Any) -> Any:
    from hub.policy.store import seed
    from hub.policy.terms import load_terms

    async def work() -> Any:
        async with hub_database(settings) as db, db() as session, session.begin():
            return await seed(
                session,
                catalog,
                load_terms(
                    catalog,
                    settings.max_grant_days,
                    settings.min_mask_candidates,
                    departments_file=settings.departments_file,
                ),
            )

    return run(work)


@policy.command("export", help="Print the live policy (the seed format of policies/default.yaml).")
@MANIFESTS_OPTION
def policy_export(manifests: Path | None) -> None:
    import yaml

    from hub.policy.snapshot import to_seed

    settings, catalog = manifest_catalog(manifests)
    snapshot = current_snapshot(settings, catalog)
    click.echo(f"# policy version {snapshot.version}")
    click.echo(
        yaml.safe_dump(to_seed(snapshot), allow_unicode=True, sort_keys=False, default_flow_style=None), nl=False
    )


@policy.command("import", help="Replace the whole policy with FILE, validated, as one new version.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", required=True, help="Why: kept in the change history.")
@MANIFESTS_OPTION
def policy_import(file: Path, reason: str, manifests: Path | None) -> None:
    import yaml

    from hub.audit.admin import CLI_DEPARTMENT, cli_actor
    from hub.auth.principal import Principal
    from hub.errors import BadUserInput
    from hub.policy.snapshot import SnapshotError, parse_seed
    from hub.policy.store import PolicyStore
    from hub.policy.terms import load_terms

    settings, catalog = manifest_catalog(manifests)
    try:
        snapshot = parse_seed(yaml.safe_load(file.read_text(encoding="utf-8")) or {})
    except (SnapshotError, yaml.YAMLError) as exc:
        fail(f"{file.name}: {exc}" if isinstance(exc, SnapshotError) else f"{file.name}: not valid YAML")
    current_snapshot(settings, catalog)  # a new hub database gets its seed first
    actor = Principal(cli_actor(), CLI_DEPARTMENT, ("admin",))

    async def work() -> Any:
        async with hub_database(settings) as db:
            terms = load_terms(
                catalog,
                settings.max_grant_days,
                settings.min_mask_candidates,
                departments_file=settings.departments_file,
            )
            return await PolicyStore(db, catalog, terms, audit=settings.audit.enabled).replace(actor, snapshot, reason)

    try:
        imported = run(work)
    except BadUserInput as exc:
        fail(f"{file.name}: {exc.message}; nothing was imported")
    click.echo(f"imported {file.name} as policy version {imported.version}; running hubs pick it up within a second")


@policy.command("test", help="Check a truth-table FILE against the live policy (or --policy FILE).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@MANIFESTS_OPTION
def policy_test(file: Path, policy_file: Path | None, manifests: Path | None) -> None:
    import yaml

    from hub.policy.snapshot import SnapshotError, parse_seed
    from hub.policy.terms import load_terms
    from hub.policy.truth import TruthTableError, run_file

    settings, catalog = manifest_catalog(manifests)
    try:
        if policy_file is not None:
            snapshot = parse_seed(yaml.safe_load(policy_file.read_text(encoding="utf-8")) or {})
        else:
            snapshot = current_snapshot(settings, catalog)
        terms = load_terms(
            catalog, settings.max_grant_days, settings.min_mask_candidates, departments_file=settings.departments_file
        )
        total, mismatches = run_file(file, snapshot, catalog, terms)
    except (SnapshotError, TruthTableError) as exc:
        fail(str(exc))
    for m in mismatches:
        click.echo(f"case {m.number}: {m.case}: expected {m.expected}, got {m.got}")
    click.echo(f"{total - len(mismatches)} passed, {len(mismatches)} failed")
    if mismatches:
        sys.exit(1)


# --- registered apps ----------------------------------------------------------------------
