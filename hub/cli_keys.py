"""`hub keys`: the key material of the hub database (rotation, re-encryption, rewrapping under a
new master key, backup and restore). Every command shows progress, offers a dry run, ends with a
summary, and fails with one clear line and a non-zero exit."""

from __future__ import annotations

import click


@click.group(help="Rotate, re-encrypt, rewrap, back up and restore the hub's keys.")
def keys() -> None:
    pass
