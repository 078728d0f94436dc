"""The schema gate: a department whose database does not match its manifest has its reads
refused as unavailable; one unreachable when checked is checked again on its next read; a read
refused as a query makes the next read check again; a fixed schema is served again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from connectors.base import UnavailableError
from hub.health.schema_gate import SchemaGate, SchemaMismatchError, SchemaState

LINE = "housing.yaml: entity Tenant, field fullName: column full_nmae is not in table hs_tenant (it has: x)"


class Database:
    def __init__(self, answers: list[Sequence[str] | Exception]) -> None:
        self.answers = answers
        self.checks = 0

    async def check(self) -> Sequence[str]:
        self.checks += 1
        answer = self.answers[min(self.checks, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_mismatched_department_is_refused_as_unavailable_with_the_line_for_the_log() -> None:
    database = Database([[LINE]])
    gate = SchemaGate("housing", database.check, timeout_s=1, recheck_s=60)

    async def scenario() -> None:
        await gate.verify()
        with pytest.raises(SchemaMismatchError) as refused:
            await gate.admit()
        assert isinstance(refused.value, UnavailableError)
        assert str(refused.value) == "the department database is unavailable"
        assert refused.value.reason == f"schema mismatch: {LINE}"
        with pytest.raises(SchemaMismatchError):
            await gate.admit()

    asyncio.run(scenario())
    assert gate.state is SchemaState.MISMATCH and gate.mismatches == (LINE,)
    assert database.checks == 1  # not checked again within recheck_s


def test_a_department_unreachable_at_start_is_checked_on_its_first_read() -> None:
    database = Database([ConnectionRefusedError(), [LINE]])
    gate = SchemaGate("housing", database.check, timeout_s=1)

    async def scenario() -> None:
        await gate.verify()
        assert gate.state is SchemaState.UNCHECKED
        with pytest.raises(SchemaMismatchError):
            await gate.admit()

    asyncio.run(scenario())
    assert database.checks == 2


def test_a_matching_department_reads_without_checking_again() -> None:
    database = Database([[]])
    gate = SchemaGate("housing", database.check, timeout_s=1)

    async def scenario() -> None:
        await gate.verify()
        for _ in range(3):
            await gate.admit()

    asyncio.run(scenario())
    assert gate.matches and database.checks == 1


def test_a_refused_query_makes_the_next_read_check_and_drift_is_caught() -> None:
    database = Database([[], [LINE]])
    gate = SchemaGate("housing", database.check, timeout_s=1)

    async def scenario() -> None:
        await gate.verify()
        gate.suspect()
        with pytest.raises(SchemaMismatchError):
            await gate.admit()

    asyncio.run(scenario())


def test_a_fixed_schema_is_served_again_after_the_recheck_interval() -> None:
    database = Database([[LINE], []])
    gate = SchemaGate("housing", database.check, timeout_s=1, recheck_s=0)

    async def scenario() -> None:
        await gate.verify()
        await gate.admit()

    asyncio.run(scenario())
    assert gate.matches and gate.mismatches == ()


def test_many_reads_waiting_on_one_check_run_it_once() -> None:
    database = Database([[]])
    gate = SchemaGate("housing", database.check, timeout_s=1)

    async def scenario() -> None:
        await asyncio.gather(*(gate.admit() for _ in range(20)))

    asyncio.run(scenario())
    assert database.checks == 1
