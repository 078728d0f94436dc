"""`hub federation sdl`: the Apollo Federation 2 subgraph SDL this hub serves at `_service`,
for composing hubs into a supergraph (docs/federation.md gives the composition step)."""

from __future__ import annotations

from pathlib import Path

import click

from hub.catalog.loader import ManifestError, load_catalog
from hub.cli.base import fail, settings_from_env


@click.group(help="Compose hubs with an Apollo Federation 2 gateway (docs/federation.md).")
def federation() -> None:
    pass


@federation.command(help="Write the subgraph SDL of the manifests (what `_service { sdl }` answers).")
@click.option("--manifests", type=click.Path(path_type=Path), help="Manifest folder (default HUB_MANIFESTS).")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write it here (default: stdout).")
def sdl(manifests: Path | None, output: Path | None) -> None:
    from schema import build_schema

    folder = manifests or settings_from_env().manifests_dir
    try:
        text = build_schema(load_catalog(folder)).subgraph_sdl()
    except ManifestError as exc:
        fail(str(exc))
    if text is None:
        fail("these manifests share no entity (`shared:`): this hub is not a Federation subgraph")
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
