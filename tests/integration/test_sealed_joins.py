"""Relations between a plain ID column and an encrypted, blind-indexed one, both ways, on real
SQLite, PostgreSQL and MariaDB: the registry of tests/fixtures/encrypted (ID numbers encrypted
and indexed) and a welfare department whose referrals hold ID numbers in plain text, one with a
lower-case x. The plain side is read by its blind index, the encrypted side decrypted in memory
and the plain side read by value; each is one statement per chunk; a masked number stays
masked."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.dialects.mysql
import yaml
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from hub.access.plan import Decision, Verdict
from hub.app import create_app
from hub.catalog import load_catalog
from hub.config import load_settings
from hub.services import build_services
from tests.conftest import TEST_MASTER_KEY, Hub, register
from tests.servers import fresh_database
from tests.unit.access.test_release_encrypted_fields import (
    CASES,
    CATALOG_DIR,
    PEOPLE,
    REFERRALS,
    Policy,
    encrypt_rows,
    make_keyring,
)

# A 32-byte digest: VARBINARY on MariaDB (a BLOB cannot be a key there), BYTEA or BLOB elsewhere.
INDEX = sa.LargeBinary(32).with_variant(sa.dialects.mysql.VARBINARY(32), "mysql", "mariadb")
META = sa.MetaData()
sa.Table(
    "person",
    META,
    sa.Column("id_number", sa.LargeBinary(200)),
    sa.Column("id_number_bidx", INDEX, primary_key=True),
    sa.Column("name", sa.LargeBinary(200)),
    sa.Column("mobile", sa.String(200)),
    sa.Column("mobile_index", sa.String(64)),
    sa.Column("district", sa.String(40)),
)
sa.Table(
    "welfare_case",
    META,
    sa.Column("case_id", sa.String(20), primary_key=True),
    sa.Column("recipient_id_number", sa.LargeBinary(200)),
    sa.Column("recipient_id_number_bidx", INDEX),
    sa.Column("note", sa.LargeBinary(200)),
    sa.Column("amount", sa.Numeric(12, 2)),
)
sa.Table(
    "welfare_referral",
    META,
    sa.Column("referral_id", sa.String(20), primary_key=True),
    sa.Column("id_number", sa.String(18)),
)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def hub(request: pytest.FixtureRequest, hub_db: URL, tmp_path: Path) -> Iterator[tuple[Hub, Policy]]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'departments.db'}"
    else:
        url = fresh_database(request.param, "hub_it_sealed").render_as_string(hide_password=False)
    manifests = tmp_path / "manifests"
    shutil.copytree(CATALOG_DIR, manifests)
    for path in manifests.glob("*.yaml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        document["connection"] = {"url_env": "HUB_IT_SEALED"}
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    catalog = load_catalog(manifests)
    keyring = make_keyring(hub_db, catalog)
    rows: dict[str, list[dict[str, Any]]] = {
        "person": encrypt_rows(keyring, catalog.entity("registry.Person"), PEOPLE),
        "welfare_case": encrypt_rows(keyring, catalog.entity("welfare.Case"), CASES),
        "welfare_referral": [dict(r) for r in REFERRALS],
    }

    async def fill() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(META.create_all)
                for name, values in rows.items():
                    await connection.execute(META.tables[name].insert(), values)
        finally:
            await engine.dispose()

    asyncio.run(fill())
    settings = load_settings(
        {"HUB_IT_SEALED": url},
        database_url=hub_db.render_as_string(),
        manifests_dir=manifests,
        master_key=TEST_MASTER_KEY,
    )
    policy = Policy()
    services = build_services(settings, catalog=catalog, policy=policy)
    with TestClient(create_app(services)) as client:
        yield Hub(client, register(hub_db), hub_db), policy


def test_the_registry_joins_plain_referrals_and_back(hub: tuple[Hub, Policy]) -> None:
    served, _ = hub
    forward = served.query("{ registryPersons { nodes { name referrals { referralId } } } }")
    assert "errors" not in forward, forward["errors"]
    by_name = {
        n["name"]: sorted(r["referralId"] for r in n["referrals"]) for n in forward["data"]["registryPersons"]["nodes"]
    }
    assert by_name == {"王小明": ["R3", "R4"], "李华": ["R1"], "张伟": []}
    back = served.query("{ welfareReferrals(orderBy: [REFERRAL_ID_ASC]) { nodes { referralId person { name } } } }")
    assert [n["person"] for n in back["data"]["welfareReferrals"]["nodes"]] == [
        {"name": "李华"},
        None,
        {"name": "王小明"},
        {"name": "王小明"},
    ]


def test_a_masked_number_joins_and_stays_masked(hub: tuple[Hub, Policy]) -> None:
    served, policy = hub
    policy.verdicts["idNumber"] = Verdict(Decision.MASKED, "no grant", lookup=True)
    response = served.client.post(
        "/graphql",
        json={"query": "{ registryPersons { nodes { idNumber referrals { referralId idNumber } } } }"},
        headers={"Authorization": f"Bearer {served.token}"},
    )
    nodes = response.json()["data"]["registryPersons"]["nodes"]
    assert sorted(len(n["referrals"]) for n in nodes) == [0, 1, 2]
    for person in PEOPLE:
        assert person["id_number"] not in response.text
