"""The `hub` command line: serve, demo, migrate, schema, apps.

Part of the composition root: it reads the environment once (load_settings) and hands values
down. Errors a user can act on print as one line and exit non-zero; no traceback."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from hub.apps.service import create_app, list_apps, revoke_tokens, rotate_token
from hub.catalog import ManifestError, load_catalog
from hub.cli_base import fail, run, settings_from_env
from hub.cli_documents import documents
from hub.cli_keys import keys
from hub.cli_maintenance import encrypt_column  # importing it also adds `keys reencrypt`
from hub.config import Settings
from hub.connections import ConnectionSetupError
from hub.db.engine import hub_engine, sessions

T = TypeVar("T")
SDL_PATH = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"

_fail = fail
_settings = settings_from_env
_run = run


@click.group(help="The department data-sharing hub.")
def main() -> None:
    pass


# --- serving ------------------------------------------------------------------------------


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from hub.app import create_app as create_http_app
    from hub.services import build_services

    try:
        services = build_services(settings)
        app = create_http_app(services)
    except (ManifestError, ConnectionSetupError) as exc:
        _fail(str(exc))
    click.echo(f"serving GraphQL at http://{host}:{port}/graphql (GraphiQL in a browser)")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


@main.command(help="Serve the hub over the manifests in HUB_MANIFESTS.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--manifests", type=click.Path(path_type=Path), help="Manifest folder (default HUB_MANIFESTS).")
def serve(host: str, port: int, manifests: Path | None) -> None:
    settings = _settings(manifests_dir=manifests)
    _serve(settings, host, port)


@main.command(help="Create (first time) and serve the demo: seven department databases with synthetic data.")
@click.option("--data-dir", default="demo-data", show_default=True, type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def demo(data_dir: Path, host: str, port: int) -> None:
    import os

    from hub.config import SettingsError, load_settings
    from hub.demo.callers import ensure_callers
    from hub.demo.workspace import Workspace, create_workspace

    root = data_dir.resolve()
    workspace = Workspace(root)
    if not workspace.ready:
        click.echo(f"creating the demo department databases in {root} (first start only)")
    _run(lambda: create_workspace(root, _progress_bar()))
    click.echo(
        f"the demo's master key is in {workspace.master_key_file} (readable by its owner only); "
        f"without it and {workspace.hub_database.database} the demo's encrypted data cannot be read"
    )
    # The demo serves with its own master key, whatever HUB_MASTER_KEY* may say.
    environ = {k: v for k, v in os.environ.items() if k not in ("HUB_MASTER_KEY", "HUB_MASTER_KEY_FILE")}
    try:
        settings = load_settings(
            environ,
            database_url=workspace.hub_database.render_as_string(),
            manifests_dir=workspace.manifests,
            master_key_file=workspace.master_key_file,
        )
    except SettingsError as exc:
        _fail(str(exc))

    async def register() -> dict[str, str]:
        engine = hub_engine(settings.database_url)
        try:
            return await ensure_callers(sessions(engine), workspace.token_file)
        finally:
            await engine.dispose()

    tokens = _run(register)
    click.echo(f"demo callers' bearer tokens ({len(tokens)}) are in {workspace.token_file}")
    _serve(settings, host, port)


def _progress_bar() -> Callable[[str, int, int], None]:
    from tqdm import tqdm

    bars: dict[str, tqdm[Any]] = {}

    def report(department: str, done: int, total: int) -> None:
        bar = bars.get(department)
        if bar is None:
            bar = bars[department] = tqdm(total=total, desc=f"{department:>16}", unit=" rows", leave=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return report


@main.command(
    "load-demo",
    help="Load the demo data, encrypted, into another database (for benchmarks and tests), one URL for all "
    "departments. Its keys go into the hub database (HUB_DATABASE_URL) under the master key "
    "(HUB_MASTER_KEY or HUB_MASTER_KEY_FILE): serve it with the same two.",
)
@click.argument("url")
def load_demo_command(url: str) -> None:
    from hub.cells import open_keyring
    from hub.crypto.errors import MasterKeyError
    from hub.crypto.master import master_key_from_settings
    from hub.demo.catalog import demo_catalog
    from hub.demo.load import load_demo
    from hub.demo.workspace import DEPARTMENTS
    from hub.migrate import upgrade

    settings = _settings()
    try:
        master = master_key_from_settings(settings)
    except MasterKeyError as exc:
        _fail(str(exc))
    upgrade(settings.database_url)

    async def work() -> tuple[dict[str, int], list[str]]:
        engine = hub_engine(settings.database_url)
        try:
            keyring, made = await open_keyring(sessions(engine), master, list(demo_catalog()))
        finally:
            await engine.dispose()
        return await load_demo(dict.fromkeys(DEPARTMENTS, url), keyring, progress=_progress_bar()), made

    counts, made = _run(work)
    if made:
        click.echo(f"made {', '.join(made)} in the hub database")
    click.echo(
        f"loaded {sum(counts.values())} rows into {len(counts)} tables, encrypted under the keys of "
        f"{settings.database_url.render_as_string()} (master key {master.id})"
    )


# --- the hub database ---------------------------------------------------------------------


@main.command(help="Migrate the hub database (HUB_DATABASE_URL) to the newest revision.")
@click.option("--check", is_flag=True, help="Only check that models and migrations agree.")
def migrate(check: bool) -> None:
    from hub.migrate import check as check_migrations
    from hub.migrate import upgrade

    settings = _settings()
    if check:
        check_migrations(settings.database_url)
        click.echo("migrations match the models")
    else:
        upgrade(settings.database_url)
        click.echo("the hub database is at the newest revision")


# --- the schema snapshot ------------------------------------------------------------------


@main.command(help="Write the GraphQL SDL of the demo manifests to schema/schema.graphql.")
@click.option("--manifests", type=click.Path(path_type=Path), help="Manifest folder (default: the demo's).")
@click.option("--output", type=click.Path(path_type=Path), default=SDL_PATH, show_default=True)
@click.option("--check", is_flag=True, help="Fail if the file differs instead of writing it.")
def schema(manifests: Path | None, output: Path, check: bool) -> None:
    from hub.demo.workspace import manifest_templates
    from schema import build_schema

    folder = manifests or manifest_templates()[0].parent
    try:
        sdl = build_schema(load_catalog(folder)).sdl()
    except ManifestError as exc:
        _fail(str(exc))
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != sdl:
            _fail(f"{output} is stale: run `hub schema` and commit it")
        click.echo(f"{output} is current")
        return
    output.write_text(sdl, encoding="utf-8")
    click.echo(f"wrote {output}")


# --- the access policy --------------------------------------------------------------------


@main.group(help="Export, import and test the access policy kept in the hub database.")
def policy() -> None:
    pass


def _catalog(manifests: Path | None) -> Any:
    settings = _settings(manifests_dir=manifests)
    try:
        return settings, load_catalog(settings.manifests_dir)
    except ManifestError as exc:
        _fail(str(exc))


def _current_snapshot(settings: Settings, catalog: Any) -> Any:
    from hub.authz.store import seed
    from hub.authz.terms import load_terms

    async def run() -> Any:
        engine = hub_engine(settings.database_url)
        try:
            async with sessions(engine)() as session, session.begin():
                return await seed(
                    session, catalog, load_terms(catalog, settings.max_grant_days, settings.min_mask_candidates)
                )
        finally:
            await engine.dispose()

    return _run(run)


MANIFESTS_OPTION = click.option(
    "--manifests", type=click.Path(path_type=Path), help="Manifest folder (default HUB_MANIFESTS)."
)


@policy.command("export", help="Print the live policy (the seed format of policies/default.yaml).")
@MANIFESTS_OPTION
def policy_export(manifests: Path | None) -> None:
    import yaml

    from hub.authz.snapshot import to_seed

    settings, catalog = _catalog(manifests)
    snapshot = _current_snapshot(settings, catalog)
    click.echo(f"# policy version {snapshot.version}")
    click.echo(
        yaml.safe_dump(to_seed(snapshot), allow_unicode=True, sort_keys=False, default_flow_style=None), nl=False
    )


@policy.command("import", help="Replace the whole policy with FILE, validated, as one new version.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", required=True, help="Why: kept in the change history.")
@MANIFESTS_OPTION
def policy_import(file: Path, reason: str, manifests: Path | None) -> None:
    import getpass

    import yaml

    from hub.authz.snapshot import SnapshotError, parse_seed
    from hub.authz.store import PolicyStore
    from hub.authz.terms import load_terms
    from hub.errors import BadUserInput
    from hub.principal import Principal

    settings, catalog = _catalog(manifests)
    try:
        snapshot = parse_seed(yaml.safe_load(file.read_text(encoding="utf-8")) or {})
    except (SnapshotError, yaml.YAMLError) as exc:
        _fail(f"{file.name}: {exc}" if isinstance(exc, SnapshotError) else f"{file.name}: not valid YAML")
    _current_snapshot(settings, catalog)  # a new hub database gets its seed first
    actor = Principal(f"cli:{getpass.getuser()}", "platform", ("admin",))

    async def run() -> Any:
        engine = hub_engine(settings.database_url)
        try:
            terms = load_terms(catalog, settings.max_grant_days, settings.min_mask_candidates)
            store = PolicyStore(sessions(engine), catalog, terms)
            return await store.replace(actor, snapshot, reason)
        finally:
            await engine.dispose()

    try:
        imported = _run(run)
    except BadUserInput as exc:
        _fail(f"{file.name}: {exc.message}; nothing was imported")
    click.echo(f"imported {file.name} as policy version {imported.version}; running hubs pick it up within a second")


@policy.command("test", help="Check a truth-table FILE against the live policy (or --policy FILE).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@MANIFESTS_OPTION
def policy_test(file: Path, policy_file: Path | None, manifests: Path | None) -> None:
    import yaml

    from hub.authz.snapshot import SnapshotError, parse_seed
    from hub.authz.terms import load_terms
    from hub.authz.truth import TruthTableError, run_file

    settings, catalog = _catalog(manifests)
    try:
        if policy_file is not None:
            snapshot = parse_seed(yaml.safe_load(policy_file.read_text(encoding="utf-8")) or {})
        else:
            snapshot = _current_snapshot(settings, catalog)
        terms = load_terms(catalog, settings.max_grant_days, settings.min_mask_candidates)
        total, mismatches = run_file(file, snapshot, catalog, terms)
    except (SnapshotError, TruthTableError) as exc:
        _fail(str(exc))
    for m in mismatches:
        click.echo(f"case {m.number}: {m.case}: expected {m.expected}, got {m.got}")
    click.echo(f"{total - len(mismatches)} passed, {len(mismatches)} failed")
    if mismatches:
        sys.exit(1)


# --- registered apps ----------------------------------------------------------------------


@main.group(help="Register department apps and manage their tokens.")
def apps() -> None:
    pass


def _with_session(work: Callable[[Any], Awaitable[T]]) -> T:
    settings = _settings()

    async def run() -> T:
        engine = hub_engine(settings.database_url)
        try:
            async with sessions(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return _run(run)


def _attributes(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _fail(f"--attribute takes key=value, not {pair!r}")
        out[key] = value
    return out


@apps.command("create", help="Register an app and print its first token (shown once).")
@click.argument("name")
@click.option("--department", required=True)
@click.option("--role", "roles", multiple=True, help="Repeat for several roles.")
@click.option("--attribute", "attributes", multiple=True, help="key=value, e.g. district=330102.")
@click.option("--days", default=90, show_default=True, type=int, help="Days the token stays valid.")
@MANIFESTS_OPTION
def apps_create(
    name: str, department: str, roles: tuple[str, ...], attributes: tuple[str, ...], days: int, manifests: Path | None
) -> None:
    from hub.authz.terms import TermsError, load_terms

    attrs = _attributes(attributes)
    # The department and roles must be ones the catalog and the live policy know.
    settings, catalog = _catalog(manifests)
    try:
        load_terms(catalog, settings.max_grant_days).department(department)
    except TermsError as exc:
        _fail(str(exc))
    known = _current_snapshot(settings, catalog).role_names()
    unknown = sorted(set(roles) - known)
    if unknown:
        _fail(f"{unknown[0]!r} is not a known role; known: {', '.join(sorted(known))}")
    issued = _with_session(lambda s: create_app(s, name, department, roles, attrs, days))
    click.echo(f"registered {name}; token (store it now, it is not shown again):")
    click.echo(issued.token)
    click.echo(f"expires {issued.expires_at:%Y-%m-%d %H:%M} UTC", err=True)


@apps.command("list", help="List registered apps and their live tokens (by hint).")
def apps_list() -> None:
    listing = _with_session(list_apps)
    if not listing:
        click.echo("no apps registered")
    for app in listing:
        roles = ",".join(app.roles) or "-"
        attrs = ",".join(f"{k}={v}" for k, v in app.attributes.items()) or "-"
        tokens = "; ".join(f"{hint}… until {until:%Y-%m-%d}" for hint, until in app.active_tokens) or "no live token"
        click.echo(f"{app.name}\t{app.department}\troles={roles}\tattributes={attrs}\t{tokens}")


@apps.command("rotate", help="Issue a new token; older tokens stop working after the grace period.")
@click.argument("name")
@click.option("--days", default=90, show_default=True, type=int)
@click.option("--grace-hours", default=0, show_default=True, type=int)
def apps_rotate(name: str, days: int, grace_hours: int) -> None:
    issued = _with_session(lambda s: rotate_token(s, name, days, timedelta(hours=grace_hours)))
    click.echo(issued.token)


@apps.command("revoke", help="Revoke every live token of an app at once.")
@click.argument("name")
def apps_revoke(name: str) -> None:
    count = _with_session(lambda s: revoke_tokens(s, name))
    click.echo(f"revoked {count} token(s) of {name}")


main.add_command(keys)
main.add_command(documents)
main.add_command(encrypt_column)

if __name__ == "__main__":
    main()
