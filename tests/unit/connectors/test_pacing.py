"""Paced work: long synchronous work done in slices gives the event loop a turn between them,
one slice of paced work per turn however many heavy tasks there are, and gives the same result
as done in one go."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from connectors import pacing
from connectors.pacing import SLICE_ROWS, TURN_SECONDS, Steps, run_paced, run_steps, sliced


def slices(name: str, count: int, log: list[str], seconds: float) -> Steps[str]:
    for _ in range(count):
        time.sleep(seconds)  # a slice of CPU work, as far as the loop can tell
        log.append(name)
        yield
    return name


async def test_a_callback_ready_meanwhile_runs_before_paced_work_ends() -> None:
    log: list[str] = []
    asyncio.get_running_loop().call_soon(log.append, "lookup")
    result = await run_paced(slices("heavy", 10, log, TURN_SECONDS))
    assert result == "heavy"
    assert log.index("lookup") < len(log) - 1


async def test_the_same_work_unpaced_keeps_the_loop_until_it_ends() -> None:
    # The contrast to the test above: run_steps never pauses.
    log: list[str] = []
    asyncio.get_running_loop().call_soon(log.append, "lookup")
    assert run_steps(slices("heavy", 10, log, TURN_SECONDS)) == "heavy"
    await asyncio.sleep(0)
    assert log[-1] == "lookup"


async def test_each_turn_of_the_loop_runs_at_most_one_slice_of_paced_work() -> None:
    log: list[str] = []
    turns: list[int] = []
    done = asyncio.Event()

    async def ticker() -> None:
        # Runs once per turn of the loop: how many slices had run by then.
        while not done.is_set():
            turns.append(len(log))
            await asyncio.sleep(0)

    ticking = asyncio.get_running_loop().create_task(ticker())
    heavy = [asyncio.create_task(run_paced(slices(name, 6, log, TURN_SECONDS))) for name in "abc"]
    await asyncio.gather(*heavy)
    done.set()
    await ticking
    # The three tasks start in the same turn (each runs its first slice before it pauses);
    # from then on they take turns, one slice per turn of the loop.
    steady = [turn for turn in turns if turn >= 3]
    assert max(b - a for a, b in itertools.pairwise(steady)) <= 1
    assert len(log) == 18
    # First come, first served: after the first round each task's slices alternate.
    assert log[3:9] == ["a", "b", "c", "a", "b", "c"]


@pytest.mark.parametrize("count", [0, 1, SLICE_ROWS - 1, SLICE_ROWS, SLICE_ROWS + 1, 2 * SLICE_ROWS + 500])
def test_sliced_work_equals_the_work_done_in_one_go(count: int) -> None:
    values = list(range(count))
    keys = [str(n) for n in values]

    def work(values: list[int], keys: list[str]) -> list[str]:
        return [f"{k}:{v * 2}" for v, k in zip(values, keys, strict=True)]

    assert run_steps(sliced(work, values, keys)) == work(values, keys)


async def test_a_10000_row_column_gives_other_tasks_a_turn_every_250_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # A turn as soon as one may be taken: what a loaded machine, where every slice takes
    # longer than TURN_SECONDS, comes to.
    monkeypatch.setattr(pacing, "TURN_SECONDS", 0.0)
    rows_per_call: list[int] = []

    def doubled(column: list[int]) -> list[int]:
        rows_per_call.append(len(column))
        return [value * 2 for value in column]

    done = asyncio.Event()
    ticks = 0

    async def lookup() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    other = asyncio.get_running_loop().create_task(lookup())
    column = list(range(10_000))
    result = await run_paced(sliced(doubled, column))
    done.set()
    await other
    assert result == [value * 2 for value in column]  # the same values, in order, as in one go
    assert max(rows_per_call) == 250
    assert ticks >= 10_000 // 250
