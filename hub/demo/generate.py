"""The demo's data: every department's rows, made from one seed.

`generate` is deterministic: the same seed gives the same rows on any machine, on any day (the
clock is fixed at the reference date) and under any hash seed (nothing iterates over a set).
Each department draws from its own random stream, so changing one department's rules leaves
the others' data as it was.
"""

from __future__ import annotations

import random
from typing import Any

from hub.demo import civil_affairs, education, finance, health, hotline, human_resources, population

Rows = list[dict[str, Any]]


def generate(seed: int = 2026) -> dict[str, dict[str, Rows]]:
    """Rows by department and table name (the table names of `hub.demo.tables`)."""

    def stream(name: str) -> random.Random:
        # String seeds are hashed with SHA-512, not with Python's per-process hash.
        return random.Random(f"{seed}:{name}")

    people = population.build(stream("population"))
    schooling = education.enrol(stream("education"), people)
    visits = health.visits(stream("health"), people)
    requests = hotline.take_requests(stream("hotline"), people, education.schools_by_household(schooling))
    assistance = civil_affairs.build(stream("civil_affairs"), people, visits, requests)
    students = {s.person.id_number for s in schooling.students}
    employment = human_resources.build(stream("human_resources"), people, students, requests)
    education.grant(stream("education-aid"), schooling, assistance.low_income, requests)
    budget = finance.budget(
        stream("finance"),
        {
            civil_affairs.DEPARTMENT: assistance.deliveries,
            human_resources.DEPARTMENT: employment.deliveries,
            education.DEPARTMENT: schooling.deliveries,
        },
    )
    by_id = {r.request_id: r for r in requests}
    hotline.answer(by_id, civil_affairs.DEPARTMENT, assistance.deliveries)
    hotline.answer(by_id, human_resources.DEPARTMENT, employment.deliveries)
    hotline.answer(by_id, education.DEPARTMENT, schooling.deliveries)
    return {
        "population": people.rows(),
        "civil_affairs": assistance.rows(),
        "human_resources": employment.rows(),
        "health": {"hlth_visit": visits.rows},
        "education": schooling.rows(),
        "finance": budget,
        "hotline": hotline.finish(stream("hotline-outcome"), requests),
    }
