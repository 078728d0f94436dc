"""`hub apps`: register department apps and manage their tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import select

from hub.audit.admin import CLI_DEPARTMENT, AdminAction, cli_actor, record_admin
from hub.auth.models import App
from hub.auth.registry import list_apps, register_app, revoke_tokens, rotate_token
from hub.cli.base import MANIFESTS_OPTION, fail, hub_database, run, settings_from_env
from hub.cli.policy import current_snapshot, manifest_catalog

T = TypeVar("T")


@click.group(help="Register department apps and manage their tokens.")
def apps() -> None:
    pass


def _with_session(
    work: Callable[[Any], Awaitable[T]],
    action: str | None = None,
    target: str = "",
    department: str = "",
    edits: list[dict[str, Any]] | None = None,
) -> T:
    """Run `work` in one transaction; with `action`, the trail's admin event is written in it."""
    settings = settings_from_env()

    async def job() -> T:
        async with hub_database(settings) as db, db() as session, session.begin():
            done = await work(session)
            if action is not None:
                if not department:
                    found = await session.scalar(select(App.department).where(App.name == target))
                    concerns = {CLI_DEPARTMENT, found or CLI_DEPARTMENT}
                else:
                    concerns = {CLI_DEPARTMENT, department}
                event = AdminAction(
                    action,
                    cli_actor(),
                    CLI_DEPARTMENT,
                    "applied",
                    target=target,
                    edits=edits or [],
                    concerns=frozenset(concerns),
                )
                await record_admin(session, event, settings.audit.enabled)
            return done

    return run(job)


def _attributes(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--attribute takes key=value, not {pair!r}")
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
    from hub.policy.terms import TermsError, load_terms

    attrs = _attributes(attributes)
    # The department and roles must be ones the catalog and the live policy know.
    settings, catalog = manifest_catalog(manifests)
    try:
        load_terms(catalog, settings.max_grant_days, departments_file=settings.departments_file).department(department)
    except TermsError as exc:
        fail(str(exc))
    known = current_snapshot(settings, catalog).role_names()
    unknown = sorted(set(roles) - known)
    if unknown:
        fail(f"{unknown[0]!r} is not a known role; known: {', '.join(sorted(known))}")
    made = [{"op": "create", "department": department, "roles": sorted(roles), "attributes": attrs, "days": days}]
    issued = _with_session(
        lambda s: register_app(s, name, department, roles, attrs, days), "app.create", name, department, made
    )
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
    issued = _with_session(
        lambda s: rotate_token(s, name, days, timedelta(hours=grace_hours)),
        "app.rotate",
        name,
        edits=[{"op": "rotate", "days": days, "graceHours": grace_hours}],
    )
    click.echo(issued.token)


@apps.command("revoke", help="Revoke every live token of an app at once.")
@click.argument("name")
def apps_revoke(name: str) -> None:
    count = _with_session(lambda s: revoke_tokens(s, name), "app.revoke", name)
    click.echo(f"revoked {count} token(s) of {name}")
