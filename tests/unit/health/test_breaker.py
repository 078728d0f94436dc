"""The breaker's states, driven by a clock the test moves: it opens after enough failures in a
row within its window, refuses at once while open, lets exactly one probe through after the
cool-down, and closes on the probe's success."""

from __future__ import annotations

import pytest

from hub.health.breaker import Breaker, BreakerSettings, Circuit, CircuitOpen, Health


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SETTINGS = BreakerSettings(failures=3, window_s=30.0, cooldown_s=10.0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> Breaker:
    return Breaker("welfare", SETTINGS, clock)


def fail(breaker: Breaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.failed(breaker.admit())


def test_a_new_breaker_is_closed_and_up(breaker: Breaker) -> None:
    assert breaker.circuit is Circuit.CLOSED
    assert breaker.health() is Health.UP


def test_it_opens_after_the_set_number_of_failures_in_a_row(breaker: Breaker) -> None:
    fail(breaker, 2)
    assert (breaker.circuit, breaker.health(), breaker.failures) == (Circuit.CLOSED, Health.DEGRADED, 2)
    fail(breaker)
    assert (breaker.circuit, breaker.health()) == (Circuit.OPEN, Health.OPEN)


def test_a_success_between_failures_starts_the_count_again(breaker: Breaker) -> None:
    fail(breaker, 2)
    breaker.succeeded(breaker.admit())
    assert breaker.health() is Health.UP
    fail(breaker, 2)
    assert breaker.circuit is Circuit.CLOSED


def test_failures_further_apart_than_the_window_do_not_open_it(breaker: Breaker, clock: Clock) -> None:
    fail(breaker, 2)
    clock.now += 31
    assert breaker.health() is Health.UP  # the old failures have left the window
    fail(breaker, 2)
    assert breaker.circuit is Circuit.CLOSED
    fail(breaker)
    assert breaker.circuit is Circuit.OPEN


def test_an_open_breaker_refuses_at_once_until_the_cool_down_has_passed(breaker: Breaker, clock: Clock) -> None:
    fail(breaker, 3)
    clock.now += 4
    with pytest.raises(CircuitOpen) as refused:
        breaker.admit()
    assert refused.value.retry_after == pytest.approx(6.0)
    clock.now += 5.9
    with pytest.raises(CircuitOpen):
        breaker.admit()


def test_after_the_cool_down_one_probe_goes_through_and_its_success_closes_it(breaker: Breaker, clock: Clock) -> None:
    fail(breaker, 3)
    clock.now += 10
    assert breaker.circuit is Circuit.HALF_OPEN
    probe = breaker.admit()
    assert probe.probe
    breaker.succeeded(probe)
    assert (breaker.circuit, breaker.health()) == (Circuit.CLOSED, Health.UP)
    assert not breaker.admit().probe


def test_while_half_open_every_call_but_the_probe_is_refused(breaker: Breaker, clock: Clock) -> None:
    fail(breaker, 3)
    clock.now += 10
    probe = breaker.admit()
    for _ in range(5):
        with pytest.raises(CircuitOpen):
            breaker.admit()
    assert breaker.health() is Health.OPEN
    breaker.succeeded(probe)
    assert breaker.circuit is Circuit.CLOSED


def test_a_failed_probe_opens_it_for_another_cool_down(breaker: Breaker, clock: Clock) -> None:
    fail(breaker, 3)
    clock.now += 10
    breaker.failed(breaker.admit())
    assert breaker.circuit is Circuit.OPEN
    clock.now += 9
    with pytest.raises(CircuitOpen):
        breaker.admit()
    clock.now += 1
    assert breaker.admit().probe


def test_a_probe_abandoned_without_an_answer_lets_the_next_call_probe(breaker: Breaker, clock: Clock) -> None:
    fail(breaker, 3)
    clock.now += 10
    breaker.abandoned(breaker.admit())
    assert breaker.circuit is Circuit.HALF_OPEN
    nxt = breaker.admit()
    assert nxt.probe
    breaker.succeeded(nxt)
    assert breaker.circuit is Circuit.CLOSED


def test_answers_to_calls_made_before_the_circuit_opened_do_not_decide_it(breaker: Breaker, clock: Clock) -> None:
    early = [breaker.admit() for _ in range(2)]
    fail(breaker, 3)
    breaker.succeeded(early[0])  # a slow read that began while closed ends now
    assert breaker.circuit is Circuit.OPEN
    clock.now += 10
    probe = breaker.admit()
    breaker.succeeded(probe)
    breaker.failed(early[1])  # and another, once the circuit has closed again
    assert (breaker.circuit, breaker.failures) == (Circuit.CLOSED, 0)


@pytest.mark.parametrize(
    "settings",
    [{"failures": 0}, {"window_s": 0.0}, {"cooldown_s": -1.0}, {"cooldown_s": float("nan")}],
)
def test_settings_that_could_never_open_or_close_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="breaker"):
        BreakerSettings(**settings)  # type: ignore[arg-type]
