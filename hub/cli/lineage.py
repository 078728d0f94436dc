"""`hub lineage`: verify the recorded links; export a trace as PROV-JSON from a running hub.

The export asks the hub over HTTP as an app (its token in HUB_TOKEN), so the trace passes the
app's access plan and lands in the access trail like any request. Exit codes as `hub audit`:
0 all is well, 1 the command could not run, 2 the links are not what was recorded.
"""

from __future__ import annotations

import os
import sys

import click
import httpx

from hub.cli.base import fail, hub_database, run, settings_from_env
from hub.lineage.trace import MAX_DEPTH
from hub.lineage.verify import LinkReport, verify_links

TAMPERED = 2
EXPORT = """query Export($from: String!, $direction: TraceDirection!, $depth: Int!, $max: Int!) {
  trace(from: $from, direction: $direction, depth: $depth, maxNodes: $max) { truncated provJson } }"""


@click.group(help="Lineage: verify recorded links, export traces.")
def lineage() -> None:
    pass


@lineage.command(help="Check every recorded link against its hash chain and the access trail.")
def verify() -> None:
    settings = settings_from_env()

    async def work() -> LinkReport:
        async with hub_database(settings) as db:
            return await verify_links(db)

    report = run(work)
    click.echo(f"checked {report.links} links against {report.events} audit events")
    if report.ok:
        click.echo("the links are intact")
        return
    for finding in report.findings[:20]:
        click.echo(finding)
    if len(report.findings) > 20:
        click.echo(f"... and {len(report.findings) - 20} more")
    sys.exit(TAMPERED)


@lineage.command(
    help="Export the trace from REF as W3C PROV-JSON, asking the hub at --url as the app whose token is in HUB_TOKEN."
)
@click.argument("ref")
@click.option("--url", required=True, help="The hub's base URL, e.g. https://hub.example.gov")
@click.option("--depth", type=click.IntRange(1, MAX_DEPTH), default=3, show_default=True)
@click.option(
    "--direction", type=click.Choice(["UPSTREAM", "DOWNSTREAM", "BOTH"]), default="DOWNSTREAM", show_default=True
)
@click.option("--max-nodes", "max_nodes", type=click.IntRange(1, 10_000), default=1000, show_default=True)
@click.option("--format", "format_", type=click.Choice(["prov-json"]), default="prov-json", show_default=True)
@click.option("--purpose", help="The purpose to state (X-Hub-Purpose).")
def export(ref: str, url: str, depth: int, direction: str, max_nodes: int, format_: str, purpose: str | None) -> None:
    token = os.environ.get("HUB_TOKEN")
    if not token:
        fail("set HUB_TOKEN to the app's token (never on the command line)")
    headers = {"Authorization": f"Bearer {token}"}
    if purpose:
        headers["X-Hub-Purpose"] = purpose
    body = {"query": EXPORT, "variables": {"from": ref, "direction": direction, "depth": depth, "max": max_nodes}}
    try:
        response = httpx.post(url.rstrip("/") + "/graphql", json=body, headers=headers, timeout=120)
        answer = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        fail(f"the hub at {url} could not be asked ({type(exc).__name__})")
    found = (answer.get("data") or {}).get("trace") if isinstance(answer, dict) else None
    if not found:
        errors = answer.get("errors") if isinstance(answer, dict) else None
        message = errors[0].get("message") if errors else f"HTTP {response.status_code}"
        fail(f"the hub refused the trace: {message}")
    if found["truncated"]:
        click.echo("the trace was cut at --max-nodes; the export holds what was reached", err=True)
    click.echo(found["provJson"])
