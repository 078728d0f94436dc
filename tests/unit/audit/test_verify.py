"""`verify` finds each kind of tampering on a single row, and the witness finds a truncated or
rewritten log; both through the public code paths over a real hub's trail (SQLite here; the
PostgreSQL run is in tests/integration/test_audit_order.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from hub.audit import verify
from hub.audit.heads import TreeHead, sign_head
from hub.audit.verify import Report, verify_log
from hub.audit.witness import WitnessAlarm, witness
from hub.catalog import Catalog
from hub.crypto.keyring import load_keyring
from hub.crypto.master import MasterKey
from hub.crypto.signing import TreeSigner
from hub.db.engine import hub_engine, sessions
from tests.conftest import TEST_MASTER_KEY, Hub, serve_small_hub

PEOPLE = "query People { registryPersons { nodes { idNumber name district } } }"
EVENTS = 12


async def _signer(url: URL) -> TreeSigner:
    engine = hub_engine(url)
    try:
        async with sessions(engine)() as session:
            return (await load_keyring(session, MasterKey(TEST_MASTER_KEY))).tree_signer()
    finally:
        await engine.dispose()


async def _sign(url: URL) -> TreeHead:
    signer = await _signer(url)
    engine = hub_engine(url)
    try:
        async with sessions(engine)() as session, session.begin():
            return await sign_head(session, signer)
    finally:
        await engine.dispose()


async def _verify(url: URL) -> Report:
    signer = await _signer(url)
    engine = hub_engine(url)
    try:
        return await verify_log(sessions(engine), signer.public_raw)
    finally:
        await engine.dispose()


def _sql(url: URL, *statements: str) -> None:
    async def run() -> None:
        engine = hub_engine(url)
        try:
            async with engine.begin() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def logged(hub_db: URL, small_catalog: Catalog) -> Iterator[Hub]:
    """A hub whose trail holds EVENTS events, with tree heads signed at 5 and at EVENTS."""
    for hub in serve_small_hub(hub_db, small_catalog, {"HUB_ACCESS_LOG": "off"}):
        for n in range(EVENTS):
            hub.query(PEOPLE if n % 3 else "{ registryPersons { nodes { nope } } }")
            if n == 4:
                asyncio.run(_sign(hub_db))
        asyncio.run(_sign(hub_db))
        yield hub


def test_an_untouched_log_verifies(logged: Hub) -> None:
    report = asyncio.run(_verify(logged.url))
    assert report.ok, report.findings
    assert (report.events, report.size, report.heads) == (EVENTS, EVENTS, 2)


TAMPERING: dict[str, tuple[list[str], str, int | None]] = {
    "modify": (["UPDATE hub_audit_event SET purpose = 'snooping' WHERE position = 7"], "altered", 7),
    "delete": (["DELETE FROM hub_audit_event WHERE position = 3"], "deleted", 3),
    "insert": (
        [
            "INSERT INTO hub_audit_event SELECT 12, at_us, principal, department, purpose, operation_hash, "
            "operation_name, document_id, outcome, status, code, policy_version, released, persons, persons_digest, "
            "format, kind, action, concerns "
            "FROM hub_audit_event WHERE position = 2"
        ],
        "inserted",
        12,
    ),
    "reorder": (
        [
            "UPDATE hub_audit_event SET position = -1 WHERE position = 4",
            "UPDATE hub_audit_event SET position = 4 WHERE position = 5",
            "UPDATE hub_audit_event SET position = 5 WHERE position = -1",
            "UPDATE hub_audit_person SET position = -1 WHERE position = 4",
            "UPDATE hub_audit_person SET position = 4 WHERE position = 5",
            "UPDATE hub_audit_person SET position = 5 WHERE position = -1",
        ],
        "reordered",
        4,
    ),
    "persons": (
        [
            "DELETE FROM hub_audit_person WHERE position = 8 AND person IN "
            "(SELECT person FROM hub_audit_person WHERE position = 8 LIMIT 1)"
        ],
        "altered",
        8,
    ),
}


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_verify_reports_the_first_tampered_event(logged: Hub, kind: str) -> None:
    statements, expected, position = TAMPERING[kind]
    _sql(logged.url, *statements)
    report = asyncio.run(_verify(logged.url))
    assert not report.ok
    first = report.findings[0]
    assert (first.kind, first.position) == (expected, position)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 4 events, so the 12-event log has whole blocks [0, 4), [4, 8), [8, 12)."""
    monkeypatch.setattr(verify, "LEVEL", 2)
    monkeypatch.setattr(verify, "PAGE", 4)


def test_whole_blocks_matching_their_stored_subtree_are_taken_without_their_leaf_hashes(
    logged: Hub, small_blocks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[tuple[int, int]] = []
    original = verify._stored

    async def spy(session: Any, start: int, stop: int) -> dict[int, bytes]:
        read.append((start, stop))
        return await original(session, start, stop)

    monkeypatch.setattr(verify, "_stored", spy)
    report = asyncio.run(_verify(logged.url))
    assert report.ok and report.events == EVENTS, report.findings
    # Only the block holding the head signed at 5 events is checked leaf by leaf.
    assert read == [(4, 8)]


IN_BLOCKS = {
    **TAMPERING,
    "modify-in-a-whole-block": (["UPDATE hub_audit_event SET status = 201 WHERE position = 9"], "altered", 9),
}


@pytest.mark.parametrize("kind", sorted(IN_BLOCKS))
def test_verify_in_blocks_reports_the_first_tampered_event(logged: Hub, small_blocks: None, kind: str) -> None:
    statements, expected, position = IN_BLOCKS[kind]
    _sql(logged.url, *statements)
    report = asyncio.run(_verify(logged.url))
    assert not report.ok
    first = report.findings[0]
    assert (first.kind, first.position) == (expected, position)


def test_a_row_and_its_stored_hash_changed_together_break_the_signed_root(logged: Hub) -> None:
    _sql(logged.url, "UPDATE hub_audit_event SET purpose = 'snooping' WHERE position = 7")

    async def rehash() -> None:
        from hub.audit.event import stored_leaf
        from hub.audit.merkle import leaf_hash
        from hub.audit.models import AuditEvent, AuditNode, node_key

        engine = hub_engine(logged.url)
        try:
            async with sessions(engine)() as session, session.begin():
                row = await session.get(AuditEvent, 7)
                node = await session.get(AuditNode, node_key(0, 7))
                assert row is not None and node is not None
                node.hash = leaf_hash(stored_leaf(row))
        finally:
            await engine.dispose()

    asyncio.run(rehash())
    report = asyncio.run(_verify(logged.url))
    # The row and its leaf agree, but the tree no longer gives the root the hub signed.
    assert not any(f.position == 7 for f in report.findings)
    assert any(f.kind == "head" and f"{EVENTS} events" in f.message for f in report.findings)


def _fetcher(hub: Hub) -> Callable[[str], Any]:
    async def fetch(path: str) -> Any:
        response = hub.client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    return fetch


def test_witness_accepts_a_log_that_only_grew(logged: Hub) -> None:
    public = asyncio.run(_signer(logged.url)).public_raw
    fetch = _fetcher(logged)
    first, _ = asyncio.run(witness(fetch, public, None))
    logged.query(PEOPLE)
    asyncio.run(_sign(logged.url))
    second, line = asyncio.run(witness(fetch, public, first))
    assert (first.size, second.size) == (EVENTS, EVENTS + 1)
    assert "extends" in line


def test_witness_raises_the_alarm_on_a_truncated_log(logged: Hub) -> None:
    public = asyncio.run(_signer(logged.url)).public_raw
    seen, _ = asyncio.run(witness(_fetcher(logged), public, None))
    _sql(logged.url, "DELETE FROM hub_audit_tree_head WHERE size = 12")  # the head of EVENTS
    with pytest.raises(WitnessAlarm, match="truncated"):
        asyncio.run(witness(_fetcher(logged), public, seen))


def test_witness_raises_the_alarm_on_a_rewritten_history(logged: Hub) -> None:
    public = asyncio.run(_signer(logged.url)).public_raw
    seen, _ = asyncio.run(witness(_fetcher(logged), public, None))
    # An older head the witness kept, with another root at its size: what a rewritten log shows.
    forged = TreeHead(seen.size - 2, seen.at_us, b"\x07" * 32, seen.signature, seen.key_id)
    logged.query(PEOPLE)
    asyncio.run(_sign(logged.url))
    with pytest.raises(WitnessAlarm, match="rewritten"):
        asyncio.run(witness(_fetcher(logged), public, forged))
    # And a head signed by another key is refused.
    with pytest.raises(WitnessAlarm, match="not signed"):
        asyncio.run(witness(_fetcher(logged), b"\x01" * 32, seen))
