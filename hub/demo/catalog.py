"""The demo's manifests, shipped inside the package, and the catalog built from them: the one
place that says which of the demo's columns are encrypted and blind-indexed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from hub.catalog import Catalog, load_catalog


def manifest_templates() -> list[Path]:
    folder = resources.files("hub.demo") / "manifests"
    return sorted(Path(str(folder)).glob("*.yaml"))


def demo_catalog() -> Catalog:
    """The catalog of the demo manifests as shipped (their connections are not opened)."""
    return load_catalog(manifest_templates()[0].parent)
