"""The change feed's bookkeeping, without a server: a moved serial applies everything before it
counts as seen; a check confirms from when it began; past the bound the instance is
unconfirmed until a check succeeds; a failed apply confirms nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from hub.instances.feed import ChangeFeed


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _feed(clock: Clock) -> ChangeFeed:
    url = make_url("postgresql+asyncpg://hub:secret@127.0.0.1/hub")
    return ChangeFeed(url, None, poll_s=1.0, bound_s=3.0, clock=clock)  # type: ignore[arg-type]


def test_a_moved_serial_applies_everything_and_confirms_from_when_the_check_began() -> None:
    clock = Clock()
    feed = _feed(clock)
    applied: list[str] = []

    async def apply() -> None:
        applied.append("policy")
        clock.now += 0.5  # applying takes time; the confirmation counts from the check's start

    feed.on_change(apply)

    async def read(value: int) -> int:
        return value

    async def scenario() -> None:
        await feed._check(lambda: read(0))  # the serial seen at start is None: applied once
        clock.now = 110.0
        assert not feed.confirmed()
        assert feed.report()["state"] == "unconfirmed"
        began = clock.now
        await feed._check(lambda: read(1))
        assert feed.confirmed_at == began
        await feed._check(lambda: read(1))  # unchanged: nothing applied

    asyncio.run(scenario())
    assert applied == ["policy", "policy"]
    assert feed.confirmed()


def test_a_failed_apply_confirms_nothing_and_is_retried() -> None:
    clock = Clock()
    feed = _feed(clock)
    calls: list[int] = []

    async def apply() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the hub database went away")

    feed.on_change(apply)

    async def read() -> int:
        return 7

    async def scenario() -> None:
        clock.now = 105.0
        with pytest.raises(RuntimeError):
            await feed._check(read)
        assert not feed.confirmed()
        await feed._check(read)
        assert feed.confirmed()

    asyncio.run(scenario())
    assert len(calls) == 2


def test_the_report_names_no_address_or_password() -> None:
    feed = _feed(Clock())
    report: dict[str, Any] = feed.report()
    assert set(report) == {"state", "confirmed_seconds_ago", "listening"}
    assert "secret" not in repr(feed) and "127.0.0.1" not in repr(feed)
