"""`hub serve`, `hub demo`, `hub load-demo`, `hub migrate` and `hub schema`: running the hub and
preparing what it runs on."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from hub.catalog import Catalog, ManifestError, load_catalog
from hub.cli.base import fail, require_migrated, run, settings_from_env
from hub.config import Settings
from hub.db.engine import hub_engine, sessions

SDL_PATH = Path(__file__).resolve().parent.parent.parent / "schema" / "schema.graphql"

T = TypeVar("T")
log = logging.getLogger("hub.cli.serve")


def _serve(settings: Settings, host: str, port: int) -> None:
    from hub.interpreter import apply_switch_interval
    from hub.services import build_services

    if settings.audit.writer is None:
        # A serving hub writes its trail from a process of its own (hub/audit/flush_process.py):
        # the flushes' work then runs on another core than the requests'.
        settings = dataclasses.replace(settings, audit=dataclasses.replace(settings.audit, writer="process"))

    # Manifests first (a file check, no database), then the hub database, then the rest.
    try:
        catalog = load_catalog(settings.manifests_dir)
    except ManifestError as exc:
        fail(str(exc))
    require_migrated(settings)
    on = {True: "on", False: "off"}
    shown = f"GraphiQL {on[settings.graphiql]}, introspection {on[settings.introspection]}"
    if settings.observe.access_log:
        import sys

        from hub.observe.access_log import write_access_log

        # Standard output, one JSON line per request; uvicorn's own log goes to standard error.
        write_access_log(sys.stdout)
    tracing = settings.observe.tracing
    shown += f", access log {on[settings.observe.access_log]}, tracing {tracing.exporter if tracing.enabled else 'off'}"
    readings = [catalog]

    def manifests() -> Catalog:
        # The catalog checked above first; every reload reads the folder again.
        return readings.pop() if readings else load_catalog(settings.manifests_dir)

    # For the whole process, and only for serving (hub/interpreter.py says why).
    apply_switch_interval(settings.switch_interval_ms)
    problem = asyncio.run(_serving(manifests, lambda c: build_services(settings, c), host, port, shown))
    if problem is not None:
        fail(problem)


async def _serving(
    manifests: Callable[[], Catalog], build: Callable[[Catalog], Any], host: str, port: int, shown: str
) -> str | None:
    """Start the hub, then serve it until stopped; a start that fails is one line (returned),
    never a traceback. SIGHUP reloads the manifests (hub/reload.py)."""
    import uvicorn

    from hub.app import create_app, invalid_trusted_documents
    from hub.reload import STARTUP_ERRORS, Reloadable

    hub = Reloadable(manifests, build, create_app, invalid_trusted_documents)
    reloads: set[asyncio.Task[Any]] = set()

    def on_hangup() -> None:
        task = asyncio.ensure_future(hub.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    try:
        # The app's start-up runs here, before uvicorn listens: uvicorn's own lifespan would print
        # the traceback of a refused start above our line.
        async with hub:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError):  # no SIGHUP on Windows
                loop.add_signal_handler(signal.SIGHUP, on_hangup)
            click.echo(f"serving GraphQL at http://{host}:{port}/graphql ({shown})")
            config = uvicorn.Config(hub, host=host, port=port, log_level="info", access_log=False, lifespan="off")
            await uvicorn.Server(config).serve()
    except STARTUP_ERRORS as exc:
        return str(exc)
    except (SQLAlchemyError, OSError) as exc:
        # The error's type, never its text: that may quote SQL or a connection string.
        return f"the hub will not start: a database could not be used ({type(exc).__name__})"
    except Exception as exc:
        # Not one of the failures above: the operator's own terminal gets its first line.
        log.debug("start-up failed", exc_info=True)
        detail = " ".join(str(exc).split())[:300]
        return f"the hub will not start: unexpected {type(exc).__name__}: {detail}"
    return None


@click.command(help="Serve the hub over the manifests in HUB_MANIFESTS.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--manifests", type=click.Path(path_type=Path), help="Manifest folder (default HUB_MANIFESTS).")
def serve(host: str, port: int, manifests: Path | None) -> None:
    settings = settings_from_env(manifests_dir=manifests)
    _serve(settings, host, port)


@click.command(help="Create (first time) and serve the demo: seven department databases with synthetic data.")
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
    run(lambda: create_workspace(root, _progress_bar()))
    click.echo(
        f"the demo's master key is in {workspace.master_key_file} (readable by its owner only); "
        f"without it and {workspace.hub_database.database} the demo's encrypted data cannot be read"
    )
    try:
        settings = load_settings(
            demo_environ(os.environ),
            database_url=workspace.hub_database.render_as_string(),
            manifests_dir=workspace.manifests,
            master_key_file=workspace.master_key_file,
        )
    except SettingsError as exc:
        fail(str(exc))

    async def register() -> dict[str, str]:
        engine = hub_engine(settings.database_url)
        try:
            return await ensure_callers(sessions(engine), workspace.token_file)
        finally:
            await engine.dispose()

    tokens = run(register)
    _write_demo_settings(workspace)
    click.echo(f"demo callers' bearer tokens ({len(tokens)}) are in {workspace.token_file}")
    _serve(settings, host, port)


def _write_demo_settings(workspace: Any) -> None:
    """The demo's settings file, so `hub --config DATA/hub.toml ...` (or any `hub` command run
    in the data folder) reaches the demo's hub; absolute paths, so it works from anywhere."""
    from hub.config_file import DEFAULT_NAME, write_config_file

    path = workspace.root / DEFAULT_NAME
    values = {
        "HUB_DATABASE_URL": workspace.hub_database.render_as_string(),
        "HUB_MANIFESTS": str(workspace.manifests),
        "HUB_MASTER_KEY_FILE": str(workspace.master_key_file),
    }
    write_config_file(path, values, "Written by `hub demo`: the demo's hub, for `hub --config` or commands run here.")
    click.echo(
        f"its settings are in {path}: `hub --config {path} apps list`, or run `hub` commands in {workspace.root}"
    )


def demo_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the demo reads its settings from: its own master key, whatever
    HUB_MASTER_KEY* may say, and its schema shown (introspection, GraphiQL) unless the
    environment turns that off."""
    return {
        "HUB_INTROSPECTION": "on",
        "HUB_GRAPHIQL": "on",
        **{k: v for k, v in environ.items() if k not in ("HUB_MASTER_KEY", "HUB_MASTER_KEY_FILE")},
    }


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


@click.command(
    "load-demo",
    help="Load the demo data, encrypted, into another database (for benchmarks and tests), one URL for all "
    "departments. Its keys go into the hub database (HUB_DATABASE_URL) under the master key "
    "(HUB_MASTER_KEY or HUB_MASTER_KEY_FILE): serve it with the same two.",
)
@click.argument("url")
@click.option(
    "--scale",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="Repeat every department's data this many times, references kept whole (hub.demo.scale).",
)
def load_demo_command(url: str, scale: int) -> None:
    from hub.crypto.cells import open_keyring
    from hub.crypto.errors import MasterKeyError
    from hub.crypto.master import master_key_from_settings
    from hub.demo.catalog import demo_catalog
    from hub.demo.load import load_demo
    from hub.demo.workspace import DEPARTMENTS
    from hub.migrate import upgrade

    settings = settings_from_env()
    try:
        master = master_key_from_settings(settings)
    except MasterKeyError as exc:
        fail(str(exc))
    upgrade(settings.database_url)

    async def work() -> tuple[dict[str, int], list[str]]:
        engine = hub_engine(settings.database_url)
        try:
            keyring, made = await open_keyring(sessions(engine), master, list(demo_catalog()))
        finally:
            await engine.dispose()
        loaded = await load_demo(dict.fromkeys(DEPARTMENTS, url), keyring, progress=_progress_bar(), scale=scale)
        return loaded, made

    counts, made = run(work)
    if made:
        click.echo(f"made {', '.join(made)} in the hub database")
    click.echo(
        f"loaded {sum(counts.values())} rows into {len(counts)} tables, encrypted under the keys of "
        f"{settings.database_url.render_as_string()} (master key {master.id})"
    )


# --- the hub database ---------------------------------------------------------------------


@click.command(help="Migrate the hub database (HUB_DATABASE_URL) to the newest revision.")
@click.option("--check", is_flag=True, help="Only check that models and migrations agree.")
def migrate(check: bool) -> None:
    from hub.migrate import check as check_migrations
    from hub.migrate import current, head, upgrade

    settings = settings_from_env()
    if check:
        check_migrations(settings.database_url)
        click.echo("migrations match the models")
    else:
        where = settings.database_url.render_as_string(hide_password=True)
        before = run(lambda: current(settings.database_url))
        upgrade(settings.database_url)
        if before is None:
            click.echo(f"created the hub database {where} at revision {head()}")
        elif before != head():
            click.echo(f"migrated the hub database {where} from revision {before} to {head()}")
        else:
            click.echo(f"the hub database {where} was already at the newest revision ({head()}); nothing to do")


# --- the schema snapshot ------------------------------------------------------------------


@click.command(help="Write the GraphQL SDL of the demo manifests to schema/schema.graphql.")
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
        fail(str(exc))
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != sdl:
            fail(f"{output} is stale: run `hub schema` and commit it")
        click.echo(f"{output} is current")
        return
    output.write_text(sdl, encoding="utf-8")
    click.echo(f"wrote {output}")


# --- the access policy --------------------------------------------------------------------
