"""Memory given back after a large request: the trim runs in a thread of its own, so the caller
(the event loop) goes on at once, and never more than one trim at a time."""

from __future__ import annotations

import threading

import pytest

from hub.access import memory


def test_the_trim_runs_in_another_thread_and_the_caller_does_not_wait_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    ran_in: list[threading.Thread] = []

    def slow_trim() -> int:
        ran_in.append(threading.current_thread())
        release.wait(10)
        return 1

    monkeypatch.setattr(memory, "_MALLOC_TRIM", slow_trim)
    thread = memory.give_back()
    # give_back has returned while the trim still waits.
    assert thread is not None and thread.is_alive()
    release.set()
    thread.join(10)
    assert ran_in == [thread]
    assert thread is not threading.current_thread()


def test_a_large_answer_sent_during_a_trim_starts_no_second_one(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    calls: list[int] = []

    def slow_trim() -> int:
        calls.append(1)
        release.wait(10)
        return 1

    monkeypatch.setattr(memory, "_MALLOC_TRIM", slow_trim)
    first = memory.give_back()
    assert memory.give_back() is None
    release.set()
    assert first is not None
    first.join(10)
    # Once it has ended, the next large answer trims again.
    again = memory.give_back()
    assert again is not None
    again.join(10)
    assert calls == [1, 1]


def test_where_the_allocator_has_no_trim_nothing_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_MALLOC_TRIM", None)
    assert memory.give_back() is None
