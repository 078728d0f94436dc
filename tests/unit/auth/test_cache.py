"""The token cache: a checked token is trusted for a short, bounded time; revocation and
expiry still take effect, and new tokens work at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import URL

from hub.auth.cache import PrincipalCache
from hub.auth.registry import register_app, revoke_tokens
from hub.db.engine import hub_engine, sessions


def scenario(url: URL, steps: list[tuple[float, str]], reads: list[int] | None = None) -> list[bool]:
    """Run `steps` (clock reading, action) against one cache; 'ask' records whether the token
    was accepted, 'revoke' revokes it in the hub database, 'settle' waits for reads the cache
    made in the background."""
    clock = [0.0]
    wall = [datetime.now(UTC)]

    async def run() -> list[bool]:
        engine = hub_engine(url)
        make = sessions(engine)
        cache = PrincipalCache(make, ttl_s=1.0, clock=lambda: clock[0], now=lambda: wall[0])
        real_read = cache._read

        def counted(token: str) -> Any:
            if reads is not None:
                reads.append(int(clock[0] * 10))
            return real_read(token)

        cache._read = counted  # type: ignore[method-assign]
        try:
            async with make() as session, session.begin():
                issued = await register_app(session, "cached-app", "welfare", ("department_app",), {}, 1)
            seen: list[bool] = []
            for at, action in steps:
                clock[0] = at
                wall[0] = datetime.now(UTC) + timedelta(seconds=at)
                if action == "revoke":
                    async with make() as session, session.begin():
                        await revoke_tokens(session, "cached-app")
                elif action == "settle":
                    await asyncio.gather(*cache._reading.values())
                elif action == "expire":
                    wall[0] = issued.expires_at + timedelta(seconds=1)
                    seen.append(await cache.principal(issued.token) is not None)
                else:
                    seen.append(await cache.principal(issued.token) is not None)
            return seen
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_revoked_token_stops_working_once_the_cache_interval_has_passed(hub_db: URL) -> None:
    accepted = scenario(hub_db, [(0.0, "ask"), (0.1, "revoke"), (0.5, "ask"), (1.2, "ask"), (3.0, "ask")])
    assert accepted == [True, True, False, False]


def test_a_token_in_use_is_read_again_in_the_background_before_its_entry_ages_out(hub_db: URL) -> None:
    async def run() -> list[float]:
        engine = hub_engine(hub_db)
        make = sessions(engine)
        clock = [0.0]
        cache = PrincipalCache(make, ttl_s=1.0, clock=lambda: clock[0])
        real_read = cache._read
        gate = asyncio.Event()
        reads: list[float] = []

        async def slow(token: str) -> Any:
            # A hub database slow to answer: reads wait until the test opens the gate.
            reads.append(clock[0])
            await gate.wait()
            return await real_read(token)

        cache._read = slow  # type: ignore[method-assign]
        try:
            async with make() as session, session.begin():
                issued = await register_app(session, "busy-app", "welfare", ("department_app",), {}, 1)
            gate.set()
            assert await cache.principal(issued.token) is not None
            gate.clear()
            # Past half its second: answered from the entry at once, read again meanwhile.
            clock[0] = 0.6
            assert await asyncio.wait_for(cache.principal(issued.token), 1) is not None
            gate.set()
            await asyncio.gather(*cache._reading.values())
            gate.clear()
            # The entry read at 0.0 has aged out, but the one read from 0.6 answers: no request
            # waited for the hub database (the gate is closed again).
            clock[0] = 1.4
            assert await asyncio.wait_for(cache.principal(issued.token), 1) is not None
            gate.set()
            return reads
        finally:
            await engine.dispose()

    assert asyncio.run(run())[:2] == [0.0, 0.6]


def test_a_token_revoked_is_refused_after_a_background_read_finds_it_gone(hub_db: URL) -> None:
    accepted = scenario(hub_db, [(0.0, "ask"), (0.1, "revoke"), (0.6, "ask"), (0.6, "settle"), (0.7, "ask")])
    # At 0.6 the cached entry answers (within its second) and is read again: revoked, it is
    # dropped, and the next request is refused before the second is out.
    assert accepted == [True, True, False]


def test_cached_token_is_read_again_once_it_expires(hub_db: URL) -> None:
    reads: list[int] = []
    scenario(hub_db, [(0.0, "ask"), (0.2, "ask"), (0.4, "expire")], reads)
    # Read at 0.0; trusted at 0.2; past its expiry at 0.4 the cache does not answer for it.
    assert reads == [0, 4]


def test_unknown_token_is_refused_and_not_remembered(hub_db: URL) -> None:
    async def run() -> tuple[bool, bool]:
        engine = hub_engine(hub_db)
        make = sessions(engine)
        cache = PrincipalCache(make, ttl_s=60.0)
        try:
            # The same token refused first, then registered: accepted at once.
            refused = await cache.principal("hub_not-yet-issued") is None
            async with make() as session, session.begin():
                issued = await register_app(session, "later-app", "welfare", ("department_app",), {}, 1)
            return refused, await cache.principal(issued.token) is not None
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == (True, True)


def test_requests_that_miss_together_share_one_read(hub_db: URL) -> None:
    async def run() -> tuple[int, int]:
        engine = hub_engine(hub_db)
        make = sessions(engine)
        cache = PrincipalCache(make, ttl_s=1.0)
        reads: list[str] = []
        real_read = cache._read

        def counted(token: str) -> Any:
            reads.append(token)
            return real_read(token)

        cache._read = counted  # type: ignore[method-assign]
        try:
            async with make() as session, session.begin():
                issued = await register_app(session, "busy-app", "welfare", ("department_app",), {}, 1)
            found = await asyncio.gather(*(cache.principal(issued.token) for _ in range(20)))
            return sum(p is not None for p in found), len(reads)
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == (20, 1)
