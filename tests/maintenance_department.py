"""A small department for the maintenance tests (`hub encrypt-column`, `hub keys reencrypt`): its
manifests, its table on SQLite, PostgreSQL or MariaDB (a fresh name per test), a migrated hub
database with the test master key, the environment a `hub` subprocess needs, and checksums of
the plaintext of a column, so a test can tell that nothing was lost or changed."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from hub.catalog import EntityInfo, load_catalog
from hub.crypto.cells import FieldCells, row_keys
from hub.crypto.fields import Failure, key_version
from hub.crypto.keyring import Keyring, load_keyring, provision, rotate_data_key
from hub.crypto.master import MasterKey
from hub.db.engine import hub_engine, sessions
from hub.migrate import upgrade
from tests.conftest import TEST_MASTER_KEY

DEPARTMENT = "registry"
WRITE_URL_ENV = "REGISTRY_WRITE_URL"
MASTER = MasterKey(TEST_MASTER_KEY)
ROOT = Path(__file__).resolve().parent.parent
HUB = str(ROOT / ".venv" / "bin" / "hub")

NAMES = ["王小明", "李华", "张伟", "Zoë Ångström", "  Ｆｕｌｌ Ｗｉｄｔｈ ", "", "O'Brien", "陈静"]

# The plain declaration, before `hub encrypt-column`: `{key}` is the key field's type.
PLAIN = """
department: registry
connection: {connection}
entities:
  - name: Person
    table: {table}
    key: personId
    fields:
      - {{name: personId, column: person_id, type: ID}}
      - {{name: name, type: String, tier: L3}}
      - {{name: mobile, type: String, tier: L3}}
      - {{name: district, type: String}}
"""

# The same once name (binary, no index) and mobile (text, blind-indexed) are encrypted.
ENCRYPTED = """
department: registry
connection: {connection}
entities:
  - name: Person
    table: {table}
    key: personId
    fields:
      - {{name: personId, column: person_id, type: ID}}
      - {{name: name, column: name_enc, type: String, tier: L3, encrypted: true}}
      - {{name: mobile, column: mobile_enc, type: String, tier: L3, encrypted: true, blind_index: mobile,
         index_column: mobile_bidx, stored_as: text}}
      - {{name: district, type: String}}
"""


def person(i: int) -> dict[str, Any]:
    """Row i: some names and mobiles NULL, some empty or oddly spaced."""
    return {
        "person_id": f"P{i:06d}",
        "name": None if i % 17 == 0 else f"{NAMES[i % len(NAMES)]}{i if i % 5 else ''}",
        "mobile": None if i % 23 == 0 else f"+86 138-{i:04d}-{i % 9973:04d}",
        "district": f"D{i % 7}",
    }


@dataclass
class Department:
    url: URL  # the department database, written through WRITE_URL_ENV
    table: str
    folder: Path
    hub_db: URL

    @property
    def manifests(self) -> Path:
        return self.folder / "manifests"

    def write_manifest(self, template: str) -> EntityInfo:
        """(Re)write the department's manifest from a template; returns its Person entity."""
        if self.url.get_backend_name() == "sqlite":
            connection = "{sqlite_path: " + str(self.url.database) + "}"
        else:
            connection = "{url_env: " + WRITE_URL_ENV + "}"
        self.manifests.mkdir(parents=True, exist_ok=True)
        (self.manifests / "registry.yaml").write_text(
            template.format(connection=connection, table=self.table), encoding="utf-8"
        )
        return self.entity()

    def entity(self, name: str = "Person") -> EntityInfo:
        return load_catalog(self.manifests).entity(f"{DEPARTMENT}.{name}")

    def env(self) -> dict[str, str]:
        """The environment of a `hub` subprocess working on this department."""
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("HUB_")},
            "HUB_DATABASE_URL": self.hub_db.render_as_string(hide_password=False),
            "HUB_MANIFESTS": str(self.manifests),
            "HUB_MASTER_KEY": base64.b64encode(TEST_MASTER_KEY).decode(),
            WRITE_URL_ENV: self.url.render_as_string(hide_password=False),
        }

    def engine(self) -> Any:
        return create_async_engine(
            self.url, connect_args={"timeout": 30} if self.url.get_backend_name() == "sqlite" else {}
        )

    async def drop(self) -> None:
        engine = self.engine()
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text(f"DROP TABLE IF EXISTS {self.table}"))
        finally:
            await engine.dispose()


def department(url: str | URL, folder: Path) -> Department:
    """A department on `url` with a fresh table name, and a migrated hub database in `folder`."""
    hub_db = URL.create("sqlite+aiosqlite", database=str(folder / "hub.db"))
    upgrade(hub_db)
    return Department(make_url(url), f"mt_{uuid.uuid4().hex[:10]}", folder, hub_db)


def sqlite_url(folder: Path) -> URL:
    return URL.create("sqlite+aiosqlite", database=str(folder / "registry.db"))


async def keyring(dept: Department, domains: Sequence[str] = ("mobile", "resident_id")) -> Keyring:
    """The hub's keyring, with the department's data key and these index keys made if missing."""
    engine = hub_engine(dept.hub_db)
    try:
        async with sessions(engine)() as session, session.begin():
            await provision(session, MASTER, [DEPARTMENT], domains)
        async with sessions(engine)() as session:
            return await load_keyring(session, MASTER)
    finally:
        await engine.dispose()


async def rotate(dept: Department) -> int:
    engine = hub_engine(dept.hub_db)
    try:
        async with sessions(engine)() as session, session.begin():
            return await rotate_data_key(session, MASTER, DEPARTMENT)
    finally:
        await engine.dispose()


def _columns(encrypted: bool) -> list[sa.Column[Any]]:
    if not encrypted:
        return [sa.Column("name", sa.String(100)), sa.Column("mobile", sa.String(40))]
    return [
        sa.Column("name_enc", sa.LargeBinary()),
        sa.Column("mobile_enc", sa.Text()),
        sa.Column("mobile_bidx", sa.String(64), index=True),
    ]


async def create_people(
    dept: Department, count: int, ring: Keyring | None = None, entity: EntityInfo | None = None
) -> None:
    """The Person table with `count` rows: plain, or (given a keyring and the encrypted entity)
    with name and mobile encrypted under the current data-key version."""
    table = sa.Table(
        dept.table,
        sa.MetaData(),
        sa.Column("person_id", sa.String(20), primary_key=True),
        *_columns(ring is not None),
        sa.Column("district", sa.String(20)),
    )
    rows = [person(i) for i in range(1, count + 1)]
    if ring is not None:
        assert entity is not None
        name, mobile = (
            FieldCells(ring, entity, entity.fields["name"]),
            FieldCells(ring, entity, entity.fields["mobile"]),
        )
        for row in rows:
            key = row["person_id"]
            plain_name, plain_mobile = row.pop("name"), row.pop("mobile")
            row["name_enc"] = None if plain_name is None else name.encrypt(plain_name, key)
            row["mobile_enc"] = None if plain_mobile is None else mobile.encrypt(plain_mobile, key)
            row["mobile_bidx"] = None if plain_mobile is None else mobile.index_value(plain_mobile)
    engine = dept.engine()
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.create)
            for start in range(0, len(rows), 1000):
                await conn.execute(table.insert(), rows[start : start + 1000])
    finally:
        await engine.dispose()


async def read_column(dept: Department, key: str, *columns: str) -> list[tuple[Any, ...]]:
    """`(key, *columns)` of every row, in key order."""
    engine = dept.engine()
    try:
        t = sa.table(dept.table, *(sa.column(c) for c in (key, *columns)))
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(*t.c).order_by(t.c[key]))).all()
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]
    finally:
        await engine.dispose()


def checksum(pairs: Sequence[tuple[Any, Any]]) -> str:
    """The checksum of a column's plaintext: every (row key, value), NULLs included."""
    digest = hashlib.sha256()
    for key, value in sorted(pairs, key=lambda p: str(p[0])):
        digest.update(repr((str(key), value)).encode())
    return digest.hexdigest()


async def plain_values(dept: Department, column: str) -> list[tuple[Any, Any]]:
    return [(row[0], row[1]) for row in await read_column(dept, "person_id", column)]


@dataclass
class Decrypted:
    values: list[tuple[Any, Any]]  # (row key, plaintext or None)
    failures: int
    versions: dict[int, int]  # data-key version -> values

    @property
    def checksum(self) -> str:
        return checksum(self.values)


async def decrypted(dept: Department, ring: Keyring, entity: EntityInfo, field: str) -> Decrypted:
    """Every value of an encrypted field decrypted for its row, as the hub would."""
    item = entity.fields[field]
    rows = await read_column(dept, entity.table.key, item.column)
    keys = row_keys(entity, [row[0] for row in rows])
    plain = FieldCells(ring, entity, item).decrypt([row[1] for row in rows], keys)
    versions: dict[int, int] = {}
    for _, value in rows:
        if value is not None:
            version = key_version(value) or 0
            versions[version] = versions.get(version, 0) + 1
    failures = sum(1 for p in plain if isinstance(p, Failure))
    return Decrypted([(row[0], p) for row, p in zip(rows, plain, strict=True)], failures, versions)
