"""The Casbin facade answers from several threads at once.

A policy change checks mask strength in a worker thread while requests decide on the event
loop; pycasbin parses its matcher on every question, which CPython 3.11 cannot do in two
threads at once without the facade taking turns."""

from __future__ import annotations

import threading

from hub.policy.enforcer import Ask, Enforcer
from hub.policy.snapshot import load_seed

ASK = Ask("department_app", "health", "population", "population.Person", "idNumber", "L3", "read")


def test_questions_from_several_threads_at_once_all_get_answers() -> None:
    enforcer = Enforcer(load_seed())
    expected = enforcer.outcome(ASK)
    failures: list[BaseException] = []
    answers: list[tuple[str, list[str]]] = []

    def ask_many() -> None:
        try:
            for _ in range(3_000):
                answers.append(enforcer.outcome(ASK))
        except BaseException as error:  # any failure in a thread is the finding
            failures.append(error)

    threads = [threading.Thread(target=ask_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    assert len(answers) == 12_000 and all(answer == expected for answer in answers)
