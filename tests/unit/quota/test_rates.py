"""Request rate limits per caller (by role) and per department, in memory and in Redis."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

import pytest
import redis

from hub.auth.principal import Principal
from hub.quota.rates import RateLimits, rate

REDIS = "redis://127.0.0.1:6379/15"


def limits(caller: str = "3/minute", department: str | None = "5/minute", storage: str = "memory://") -> RateLimits:
    return RateLimits(
        {"department_app": rate(caller, "t")},
        rate("2/minute", "t"),
        rate(department, "t") if department else None,
        storage,
    )


def app(name: str, department: str = "health", roles: tuple[str, ...] = ("department_app",)) -> Principal:
    return Principal(name, department, roles)


async def admitted(rates: RateLimits, caller: Principal, times: int) -> list[bool]:
    return [await rates.admit(caller) is None for _ in range(times)]


def test_a_caller_is_refused_past_its_rate_with_when_to_retry() -> None:
    async def run() -> None:
        rates = limits(department=None)
        assert await admitted(rates, app("a"), 4) == [True, True, True, False]
        refusal = await rates.admit(app("a"))
        assert refusal is not None
        assert (refusal.scope, refusal.limit, refusal.period, refusal.used) == ("caller", 3, 60, 3)
        assert 1 <= refusal.retry_after <= 60
        assert refusal.window_end > refusal.window_start

    asyncio.run(run())


def test_a_department_s_apps_share_its_rate_and_other_departments_do_not() -> None:
    async def run() -> None:
        rates = limits(caller="100/minute", department="5/minute")
        assert await admitted(rates, app("a"), 3) == [True] * 3
        assert await admitted(rates, app("b"), 3) == [True, True, False]
        refusal = await rates.admit(app("c"))
        assert refusal is not None and refusal.scope == "department"
        assert await admitted(rates, app("d", department="finance"), 2) == [True, True]

    asyncio.run(run())


def test_a_refused_request_is_not_counted_against_the_department() -> None:
    # The caller's own limit refuses first; the department's count is left as it was.
    async def run() -> None:
        rates = limits(caller="2/minute", department="3/minute")
        assert await admitted(rates, app("greedy"), 10) == [True, True] + [False] * 8
        assert await admitted(rates, app("other"), 2) == [True, False]

    asyncio.run(run())


def test_the_most_generous_role_counts_and_unlisted_roles_get_the_default() -> None:
    rates = limits(caller="3/minute")
    assert rates.limit_of(app("x", roles=("public",))).amount == 2
    assert rates.limit_of(app("x", roles=("public", "department_app"))).amount == 3
    assert rates.limit_of(app("x", roles=())).amount == 2


def test_instances_sharing_redis_count_one_caller_together() -> None:
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        # Like the databases: skipped with the reason locally, a failure in CI.
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("Redis is not running at 127.0.0.1:6379")

    async def run() -> None:
        # Two hub instances: a caller cannot multiply its rate by spreading over them.
        one, two = limits(department=None, storage=REDIS), limits(department=None, storage=REDIS)
        caller = app(f"app-{uuid.uuid4().hex}")
        assert await admitted(one, caller, 2) == [True, True]
        assert await admitted(two, caller, 2) == [True, False]

    asyncio.run(run())


def test_an_unreachable_store_lets_requests_through_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> list[bool]:
        rates = limits(caller="1/minute", department=None, storage="redis://127.0.0.1:1/0")
        return await admitted(rates, app("a"), 3)

    with caplog.at_level(logging.ERROR, logger="hub.alert"):
        assert asyncio.run(run()) == [True, True, True]
    assert "the store cannot be reached" in caplog.text


@pytest.mark.parametrize("text", ["", "lots", "0/minute", "5/fortnight", "-1/second"])
def test_a_malformed_rate_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        rate(text, "HUB_RATE_LIMITS")


def test_a_request_the_department_refuses_is_not_counted_against_its_caller() -> None:
    async def run() -> None:
        now = [6_000_000.5]  # early in a minute's window
        rates = RateLimits({"department_app": rate("3/minute", "t")}, rate("2/minute", "t"), rate("2/second", "t"))
        rates.clock = rates._windows.clock = lambda: now[0]  # type: ignore[union-attr]
        assert await admitted(rates, app("a"), 2) == [True, True]
        refusals = [await rates.admit(app("b")) for _ in range(5)]
        assert [r.scope if r else None for r in refusals] == ["department"] * 5
        # The department's second has passed; b's own minute still holds none of its refusals.
        now[0] += 2.5
        assert await admitted(rates, app("b"), 2) == [True, True]
        now[0] += 2.5
        refused = await rates.admit(app("b"))
        assert refused is None
        refused = await rates.admit(app("b"))
        assert refused is not None and refused.scope == "caller"

    asyncio.run(run())


def test_each_set_of_roles_keeps_its_own_limit_once_worked_out() -> None:
    # The limit is remembered per set of roles: a generous role's limit, worked out first,
    # never becomes that of a caller without the role.
    async def run() -> None:
        rates = limits(caller="5/minute", department=None)
        assert await admitted(rates, app("app", roles=("department_app",)), 5) == [True] * 5
        assert await admitted(rates, app("pub", roles=("public",)), 3) == [True, True, False]
        assert await admitted(rates, app("both", roles=("public", "department_app")), 6) == [True] * 5 + [False]

    asyncio.run(run())


@pytest.mark.parametrize(
    ("caller", "department"), [("3/minute", "5/minute"), ("5/second", "7/second"), ("4/minute", None)]
)
def test_the_in_memory_windows_admit_and_refuse_as_the_limits_library_does(
    monkeypatch: pytest.MonkeyPatch, caller: str, department: str | None
) -> None:
    # The same requests at the same instants, counted by the hub's windows and by `limits`'
    # own in-memory sliding window counter: the same answers, the same refusals' figures.
    import limits.aio.storage.memory as limits_memory
    import limits.aio.strategies as limits_strategies

    clock = [9_000_000.0]
    monkeypatch.setattr(limits_memory.time, "time", lambda: clock[0])
    monkeypatch.setattr(limits_strategies.time, "time", lambda: clock[0])

    async def run() -> None:
        ours = limits(caller, department)
        ours.clock = ours._windows.clock = lambda: clock[0]  # type: ignore[union-attr]
        theirs = limits(caller, department)
        theirs._windows = None  # the library's path, as with Redis
        theirs.clock = ours.clock
        steps = [0.0, 0.1, 0.2, 0.3, 0.3, 0.9, 1.4, 7.0, 29.0, 31.0, 59.5, 60.2, 61.0, 90.0, 119.9, 121.0, 200.0]
        for step in steps:
            clock[0] = 9_000_000.0 + step
            for who in ("a", "b", "a"):
                mine, library = await ours.admit(app(who)), await theirs.admit(app(who))
                assert (mine is None) == (library is None), (step, who)
                if mine is not None and library is not None:
                    assert (mine.scope, mine.used, mine.retry_after) == (
                        library.scope,
                        library.used,
                        library.retry_after,
                    )

    asyncio.run(run())
