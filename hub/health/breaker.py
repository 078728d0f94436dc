"""A circuit breaker for one department database: after repeated failures the hub stops asking
it for a while and answers at once, then lets one read through to see whether it is back.

Closed, it counts consecutive failures; `failures` of them within `window_s` (a success between
them starts the count again) open it. Open, it refuses every call until `cooldown_s` has passed;
the first call after that is the probe (half-open) and every other call is refused while the
probe runs. The probe's success closes the breaker, its failure opens it for another cool-down,
and a probe that ends without an answer either way (its request was cancelled) lets the next
call probe instead.

Written here rather than taken from a library: purgatory (the maintained asyncio one) lets
every concurrent call through while half-open, so a department coming back would meet the whole
queue at once, and it times its cool-down by the wall clock, which jumps; aiobreaker has had no
release since 2021. Neither reports the "degraded" state /readyz shows. The breaker is used from
one event loop and none of its methods awaits, so no two calls interleave inside it.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("hub.health")


class Circuit(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Health(enum.Enum):
    """A department as /readyz shows it."""

    UP = "up"
    # Answering, but it failed lately: the circuit is closed with failures in its window.
    DEGRADED = "degraded"
    # Refused at once: the circuit is open, or half-open (all but one probe refused).
    OPEN = "open"


@dataclass(frozen=True)
class BreakerSettings:
    failures: int = 5
    window_s: float = 30.0
    cooldown_s: float = 10.0

    def __post_init__(self) -> None:
        if self.failures < 1 or not self.window_s > 0 or not self.cooldown_s > 0:
            raise ValueError("a breaker needs at least one failure, a window and a cool-down")


class CircuitOpen(Exception):
    """The breaker refused the call; `retry_after` is how long until it lets a probe through."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"the circuit of {name} is open")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Ticket:
    """One admitted call: whether it is the probe, and the breaker's epoch when it started (an
    answer from before the last change of state says nothing about the state now)."""

    probe: bool
    epoch: int


class Breaker:
    def __init__(self, name: str, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.settings = settings
        self._clock = clock
        self._circuit = Circuit.CLOSED
        self._epoch = 0
        self._failures = 0
        self._first_failure = -math.inf
        self._opened_at = -math.inf
        self._probing = False
        # The ticket of every call while closed in this epoch: made once, not per read.
        self._closed = Ticket(False, self._epoch)

    @property
    def circuit(self) -> Circuit:
        """The state, as the next call would find it (an open circuit past its cool-down is
        half-open: that call would probe)."""
        if self._circuit is Circuit.OPEN and self._cooled():
            return Circuit.HALF_OPEN
        return self._circuit

    @property
    def failures(self) -> int:
        """Consecutive failures counted towards opening, within the window."""
        if self._circuit is not Circuit.CLOSED or self._clock() - self._first_failure > self.settings.window_s:
            return 0
        return self._failures

    def health(self) -> Health:
        if self._circuit is not Circuit.CLOSED:
            return Health.OPEN
        return Health.DEGRADED if self.failures else Health.UP

    def admit(self) -> Ticket:
        """A ticket for one call, or CircuitOpen when the call must not be made."""
        if self._circuit is Circuit.CLOSED:
            return self._closed
        if self._circuit is Circuit.OPEN:
            if not self._cooled():
                raise CircuitOpen(self.name, self._opened_at + self.settings.cooldown_s - self._clock())
            self._change(Circuit.HALF_OPEN)
            log.info("department %s: circuit half-open, one read goes through to probe", self.name)
        if self._probing:
            # Asked again once the probe has answered, well within a cool-down.
            raise CircuitOpen(self.name, min(1.0, self.settings.cooldown_s))
        self._probing = True
        return Ticket(True, self._epoch)

    def succeeded(self, ticket: Ticket) -> None:
        """The call got an answer from the database."""
        if ticket.probe:
            self._probing = False
            self._change(Circuit.CLOSED)
            log.warning("department %s: circuit closed, the probe was answered", self.name)
        elif ticket.epoch == self._epoch and self._circuit is Circuit.CLOSED:
            self._failures = 0

    def failed(self, ticket: Ticket) -> None:
        """The database could not be reached or did not answer in time."""
        now = self._clock()
        if ticket.probe:
            self._probing = False
            self._open(now, "the probe failed")
            return
        if ticket.epoch != self._epoch or self._circuit is not Circuit.CLOSED:
            return
        if self._failures == 0 or now - self._first_failure > self.settings.window_s:
            self._failures, self._first_failure = 0, now
        self._failures += 1
        if self._failures >= self.settings.failures:
            self._open(now, f"{self._failures} failures in a row")

    def abandoned(self, ticket: Ticket) -> None:
        """The call ended without telling either way (its request was cancelled)."""
        if ticket.probe:
            self._probing = False

    def _open(self, now: float, why: str) -> None:
        self._opened_at = now
        self._change(Circuit.OPEN)
        log.warning(
            "department %s: circuit open (%s); reads are refused for %s s", self.name, why, self.settings.cooldown_s
        )

    def _change(self, circuit: Circuit) -> None:
        self._circuit = circuit
        self._epoch += 1
        self._failures = 0
        self._closed = Ticket(False, self._epoch)

    def _cooled(self) -> bool:
        return self._clock() >= self._opened_at + self.settings.cooldown_s
