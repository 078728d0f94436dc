"""Inclusion and consistency proofs read through the cache of stored subtree hashes give the
same, checkable proofs as without it, and a warm cache spares the subtree reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.audit import tree
from hub.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from hub.audit.tree import NodeCache, consistency, inclusion, root_at
from hub.db.engine import hub_engine, sessions
from tests.conftest import Hub
from tests.unit.audit.test_verify import EVENTS, logged  # noqa: F401  (the fixture)


def test_a_warm_cache_proves_every_event_without_reading_a_subtree_again(
    logged: Hub,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[int] = []
    original = tree.read_nodes

    async def counted(session: Any, wanted: Any) -> Any:
        reads.append(len(list(wanted)))
        return await original(session, wanted)

    monkeypatch.setattr(tree, "read_nodes", counted)

    async def prove() -> None:
        engine = hub_engine(logged.url)
        cache = NodeCache()
        try:
            maker = sessions(engine)
            async with maker() as session:
                root = await root_at(session, EVENTS)
            for rounds in range(2):
                before = len(reads)
                for position in range(EVENTS):
                    async with maker() as session:
                        cached = await inclusion(session, position, EVENTS, cache)
                        plain = await inclusion(session, position, EVENTS)
                    assert cached == plain
                    assert verify_inclusion(position, EVENTS, leaf_hash(cached.leaf), cached.path, root)
                # Without the cache every proof reads; with a warm cache none does.
                cached_reads = len(reads) - before - EVENTS
                assert cached_reads > 0 if rounds == 0 else cached_reads == 0
            async with maker() as session:
                for first in range(1, EVENTS + 1):
                    path = await consistency(session, first, EVENTS, cache)
                    assert verify_consistency(first, EVENTS, await root_at(session, first), root, path)
        finally:
            await engine.dispose()

    asyncio.run(prove())


def test_the_cache_keeps_at_most_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = NodeCache(limit=3)

    async def fake(_: Any, wanted: Any) -> dict[tuple[int, int], bytes]:
        return {node: bytes([node[1]]) * 32 for node in wanted}

    monkeypatch.setattr(tree, "read_nodes", fake)
    found = asyncio.run(cache.read(None, [(0, i) for i in range(5)]))  # type: ignore[arg-type]
    assert found == {(0, i): bytes([i]) * 32 for i in range(5)}
    assert list(cache._hashes) == [(0, 2), (0, 3), (0, 4)]
