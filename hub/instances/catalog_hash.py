"""The catalog's hash: every instance of a hub must serve the same manifests.

Manifests are files on each instance. The hash is SHA-256 over what the manifest files the
catalog loads (`*.yaml`, `*.yml`) say, in name order: each file's name and its content as
canonical JSON, without its `connection` section. Where a department's database is reached may
differ between instances (a replica nearer one of them, a URL from another variable); its
entities, fields, tiers, masks and relations may not.
The hub database records the hash the instances must match (`hub_catalog`): the first instance
to start on a hub database records its own; `hub catalog publish` records the hash of the
manifests it is given, when an operator rolls out a manifest change. An instance whose hash
differs reports `catalog: differs` in /readyz and answers it with 503, so a load balancer stops
sending it requests until it runs the published manifests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from hub.instances.models import PublishedCatalog

PREFIX = "sha256:"
FIRST_INSTANCE = "first instance"
PUBLISHED = "hub catalog publish"


def catalog_hash(directory: Path) -> str:
    """The hash of the manifest files in `directory` (the same files `load_catalog` reads)."""
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml")) if directory.is_dir() else []
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(document, dict):
            document = {key: value for key, value in document.items() if key != "connection"}
        content = json.dumps(document, sort_keys=True, ensure_ascii=False, default=str).encode()
        digest.update(path.name.encode() + b"\x00" + str(len(content)).encode() + b"\x00" + content)
    return PREFIX + digest.hexdigest()


@dataclass(frozen=True)
class Published:
    hash: str
    published_at: datetime
    published_by: str


async def published(session: AsyncSession) -> Published | None:
    row = await session.get(PublishedCatalog, 1)
    return None if row is None else Published(row.hash, row.published_at, row.published_by)


async def record_if_absent(session: AsyncSession, hash_: str) -> None:
    """Record `hash_` unless a hash is recorded already (two first instances: one wins)."""
    row = {"id": 1, "hash": hash_, "published_at": datetime.now(UTC), "published_by": FIRST_INSTANCE}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(PublishedCatalog).values(row).on_conflict_do_nothing())


async def publish(session: AsyncSession, hash_: str) -> Published | None:
    """Record `hash_` as the one every instance must match; returns the one it replaced."""
    before = await published(session)
    row = await session.get(PublishedCatalog, 1)
    now = datetime.now(UTC)
    if row is None:
        session.add(PublishedCatalog(id=1, hash=hash_, published_at=now, published_by=PUBLISHED))
    else:
        row.hash, row.published_at, row.published_by = hash_, now, PUBLISHED
    await session.flush()
    return before


async def published_hash(session: AsyncSession) -> str | None:
    return (await session.execute(select(PublishedCatalog.hash).where(PublishedCatalog.id == 1))).scalar_one_or_none()
