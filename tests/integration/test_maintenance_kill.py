"""`hub encrypt-column` and `hub keys reencrypt` killed (SIGKILL, a real process kill) at random
points, then run again to completion, on SQLite, PostgreSQL and MariaDB: the plaintext checksum
of every encrypted column is the same before and after, every row decrypts, and re-encryption
leaves every value under the current data-key version. And an app writing during a
re-encryption: its writes are never lost.

Kills come at seeded points: one in start-up, three once a random fraction of the work is seen
done in the database, and one a moment after the work looks done (in encrypt-column's
verification or drop).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.crypto.cells import FieldCells
from hub.crypto.fields import key_version
from tests.maintenance_department import (
    ENCRYPTED,
    HUB,
    PLAIN,
    WRITE_URL_ENV,
    Department,
    checksum,
    create_people,
    decrypted,
    department,
    keyring,
    plain_values,
    read_column,
    rotate,
    sqlite_url,
)
from tests.servers import require_server

pytestmark = pytest.mark.slow

ROWS = 3000
BATCH = "20"  # small batches: under a loaded machine, a kill must still land mid-work
SEEDS = [11, 22, 33]
POLL_S = 0.02
# The longest a single run may take before the test calls it hung.
RUN_LIMIT_S = 60

ENCRYPT = [
    "encrypt-column",
    "registry",
    "Person",
    "mobile",
    "--write-url-env",
    WRITE_URL_ENV,
    "--index-domain",
    "mobile",
    "--stored-as",
    "text",
    "--batch-size",
    BATCH,
    "--drop-plain",
]
REENCRYPT = ["keys", "reencrypt", "--department", "registry", "--write-url-env", WRITE_URL_ENV, "--batch-size", BATCH]


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def dept(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Department]:
    url = sqlite_url(tmp_path) if request.param == "sqlite" else require_server(request.param)
    found = department(url, tmp_path)
    yield found
    asyncio.run(found.drop())


Probe = Callable[[], Awaitable[float]]


async def start(dept: Department, args: list[str], output: bool = False) -> asyncio.subprocess.Process:
    pipe = asyncio.subprocess.PIPE if output else asyncio.subprocess.DEVNULL
    return await asyncio.create_subprocess_exec(
        HUB, *args, env=dept.env(), stdout=pipe, stderr=pipe, start_new_session=True
    )


async def kill_at(process: asyncio.subprocess.Process, probe: Probe, fraction: float, delay: float) -> float:
    """SIGKILL `process` `delay` seconds after `probe` first reports `fraction` of the work done
    (`fraction` 0: `delay` seconds after the start). Returns the fraction done at the kill (1.0
    if the command finished first)."""
    began = time.monotonic()
    reached: float | None = None
    while process.returncode is None:
        seen = await probe()
        now = time.monotonic()
        if reached is None and seen >= fraction:
            reached = now
        if reached is not None and now - reached >= delay:
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
            await process.wait()
            return seen
        assert now - began < RUN_LIMIT_S, "the command hung"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), POLL_S)
    assert process.returncode == 0, f"the command failed on its own (exit {process.returncode})"
    return 1.0


async def killed_then_finished(dept: Department, args: list[str], probe: Probe, seed: int) -> tuple[list[float], str]:
    """Run the command, killing it at the seed's points, then once more to the end: once in
    start-up, three times once a random fraction of the work is done, and once a moment after
    the work looks done (in a verification, or a drop)."""
    rng = random.Random(seed)
    fractions = sorted(rng.uniform(0.05, 0.95) for _ in range(3))
    plan = [(0.0, rng.uniform(0.1, 0.8)), *((f, 0.0) for f in fractions), (1.0, rng.uniform(0.0, 0.3))]
    seen = [await kill_at(await start(dept, args), probe, fraction, delay) for fraction, delay in plan]
    # On SQLite a probe waits for the writer's lock and can first see the work done; the server
    # databases are probed beside the writer, and there a kill must land mid-work.
    if dept.url.get_backend_name() != "sqlite":
        assert any(0 < s < 1 for s in seen[1:4]), f"no kill landed in the middle of the work: {seen}"
    final = await start(dept, args, output=True)
    out, err = await asyncio.wait_for(final.communicate(), RUN_LIMIT_S)
    assert final.returncode == 0, err.decode()[-2000:]
    return seen, out.decode()


async def count(dept: Department, column: str) -> int:
    engine = dept.engine()
    try:
        t = sa.table(dept.table, sa.column(column))
        async with engine.connect() as conn:
            return int(
                await conn.scalar(sa.select(sa.func.count()).select_from(t).where(t.c[column].is_not(None))) or 0
            )
    except sa.exc.DBAPIError:
        return 0  # not added yet, or gone
    finally:
        await engine.dispose()


@pytest.mark.parametrize("seed", SEEDS)
async def test_encrypt_column_killed_at_random_points_then_run_again_loses_nothing(dept: Department, seed: int) -> None:
    dept.write_manifest(PLAIN)
    await create_people(dept, ROWS)
    before = await plain_values(dept, "mobile")
    to_fill = sum(1 for _, v in before if v is not None)

    async def filled() -> float:
        return await count(dept, "mobile_enc") / to_fill

    await killed_then_finished(dept, ENCRYPT, filled, seed)
    ring = await keyring(dept)
    after = await decrypted(dept, ring, dept.write_manifest(ENCRYPTED), "mobile")
    assert after.failures == 0
    assert after.checksum == checksum(before)
    assert "mobile" not in {c for c in await _columns(dept)}


async def _columns(dept: Department) -> set[str]:
    engine = dept.engine()
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: {col["name"] for col in sa.inspect(c).get_columns(dept.table)})
    finally:
        await engine.dispose()


async def encrypted_people(dept: Department) -> Any:
    entity = dept.write_manifest(ENCRYPTED)
    await create_people(dept, ROWS, await keyring(dept), entity)
    assert await rotate(dept) == 2
    return entity


async def at_current(dept: Department, version: int) -> float:
    """The fraction of name and mobile values under `version`."""
    rows = await read_column(dept, "person_id", "name_enc", "mobile_enc")
    values = [v for row in rows for v in row[1:] if v is not None]
    return sum(1 for v in values if key_version(v) == version) / len(values)


@pytest.mark.parametrize("seed", SEEDS)
async def test_reencrypt_killed_at_random_points_then_run_again_loses_nothing(dept: Department, seed: int) -> None:
    entity = await encrypted_people(dept)
    ring = await keyring(dept)
    before = {name: await decrypted(dept, ring, entity, name) for name in ("name", "mobile")}

    _, output = await killed_then_finished(dept, REENCRYPT, lambda: at_current(dept, 2), seed)
    assert "is now under data-key version v2" in output
    for name in ("name", "mobile"):
        after = await decrypted(dept, ring, entity, name)
        assert after.failures == 0
        assert after.checksum == before[name].checksum
        assert set(after.versions) == {2}


async def frontier(dept: Department, engine: Any) -> int:
    """The first row whose name is still under data-key v1: where the re-encryption is."""
    t = sa.table(dept.table, sa.column("person_id"), sa.column("name_enc"))
    old = t.c.name_enc.is_not(None) & (sa.func.substr(t.c.name_enc, 2, 4) == (1).to_bytes(4, "big"))
    async with engine.connect() as conn:
        first = await conn.scalar(sa.select(sa.func.min(t.c.person_id)).where(old))
    return int(first[1:]) if first else ROWS


async def test_a_write_during_reencryption_is_never_lost(dept: Department) -> None:
    entity = await encrypted_people(dept)
    ring = await keyring(dept)  # loaded after the rotation: the app writes under v2
    before = dict((await decrypted(dept, ring, entity, "name")).values)
    cells = FieldCells(ring, entity, entity.fields["name"])
    rng = random.Random(7)
    written: dict[str, str] = {}
    process = await start(dept, REENCRYPT, output=True)
    communicated = asyncio.ensure_future(process.communicate())
    engine = dept.engine()
    t = sa.table(dept.table, sa.column("person_id"), sa.column("name_enc"))
    try:
        while not communicated.done():
            # The app writes rows where the re-encryption is at, or just ahead of it: rows that
            # may sit in a batch read and not yet written.
            at = await frontier(dept, engine)
            for _ in range(5):
                key = f"P{min(ROWS, at + rng.randint(0, 2 * int(BATCH))):06d}"
                value = f"written by the app {len(written)}"
                async with engine.begin() as conn:
                    await conn.execute(
                        sa.update(t).where(t.c.person_id == key).values(name_enc=cells.encrypt(value, key))
                    )
                written[key] = value
        _, err = await asyncio.wait_for(communicated, RUN_LIMIT_S)
    finally:
        await engine.dispose()
    assert process.returncode == 0, err.decode()[-2000:]
    assert len(written) > 20
    after = await decrypted(dept, ring, entity, "name")
    assert after.failures == 0
    assert set(after.versions) == {2}
    values = dict(after.values)
    assert {k: values[k] for k in written} == written
    assert {k: v for k, v in values.items() if k not in written} == {
        k: v for k, v in before.items() if k not in written
    }
