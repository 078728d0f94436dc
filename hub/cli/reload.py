"""`hub reload`: ask a serving hub to read its manifests again (hub/reload.py), through the
admin mutation `reloadManifests` or, for a hub on this machine, by SIGHUP."""

from __future__ import annotations

import os
import signal

import click

from hub.cli.base import fail, settings_from_env

MUTATION = "mutation { reloadManifests { reloaded entities error } }"


@click.command(
    "reload",
    help=(
        "Reload a serving hub's manifests without a restart: --url sends the admin mutation reloadManifests "
        "with the token in HUB_ADMIN_TOKEN and prints its answer; --pid sends SIGHUP to a local `hub serve`. "
        "A manifest that does not load or start leaves the previous ones serving."
    ),
)
@click.option("--url", help="The hub's GraphQL endpoint, e.g. http://127.0.0.1:8000/graphql.")
@click.option("--pid", type=click.IntRange(min=2), help="The process id of a local `hub serve`.")
def reload_command(url: str | None, pid: int | None) -> None:
    if (url is None) == (pid is None):
        fail("give --url (a hub's GraphQL endpoint) or --pid (a local `hub serve`), one of the two")
    if pid is not None:
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as error:
            fail(f"cannot signal process {pid}: {error.strerror or type(error).__name__}")
        click.echo(f"sent SIGHUP to {pid}: its log says whether the manifests were taken")
        return
    import httpx

    # The token comes from the environment (or the settings file), never an argument: a
    # command line is visible to every user of the machine.
    token = settings_from_env().secret("HUB_ADMIN_TOKEN")
    if not token:
        fail("set HUB_ADMIN_TOKEN to an admin app's token")
    try:
        response = httpx.post(
            str(url), json={"query": MUTATION}, headers={"Authorization": f"Bearer {token}"}, timeout=300
        )
        body = response.json()
    except (httpx.HTTPError, ValueError) as error:
        fail(f"no answer from {url} ({type(error).__name__})")
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        first = errors[0]
        fail(f"{first.get('extensions', {}).get('code', 'ERROR')}: {first.get('message', '')}")
    report = body["data"]["reloadManifests"]
    if not report["reloaded"]:
        fail(f"the manifests were not taken, the previous ones still serve: {report['error']}")
    click.echo(f"reloaded: the hub serves {report['entities']} entities")
