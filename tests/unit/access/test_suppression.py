"""Small groups of persons in an aggregate's answer: suppressed, and never recoverable by
subtraction within the answer (hub/access/suppression.py)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.access.aggregate import Cell
from hub.access.record import AccessRecord
from hub.access.suppression import PERSONS, Suppression, suppress
from hub.auth.principal import Principal
from hub.catalog import load_catalog
from hub.policy.decisions import SnapshotPolicy
from hub.policy.snapshot import MinGroup, Snapshot

settings.register_profile(
    "suppression-ci", max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CI = settings.get_profile("suppression-ci")
RULE = Suppression("person_bidx", 5)


def cell(name: str, persons: int, rows: int | None = None) -> Cell:
    return Cell({"district": name}, {"count": rows if rows is not None else persons, PERSONS: persons})


def hidden(cells: list[Cell]) -> list[str]:
    return [c.key["district"] for c in cells if c.suppressed]


def test_groups_of_fewer_than_k_persons_are_suppressed_and_their_measures_withheld() -> None:
    cells = [cell("a", 12), cell("b", 4), cell("c", 3), cell("d", 30)]
    total = cell("", 49)
    assert suppress(cells, total, RULE) == 2
    assert hidden(cells) == ["b", "c"]
    assert cells[1].measure("count") is None
    assert cells[0].measure("count") == 12
    # b and c together hold 7 persons: the total gives their sum, neither one alone.
    assert not total.suppressed


def test_one_small_group_takes_the_next_smallest_with_it() -> None:
    # Otherwise total - a - c - d would be b's count exactly.
    cells = [cell("a", 12), cell("b", 2), cell("c", 9), cell("d", 30)]
    total = cell("", 53)
    assert suppress(cells, total, RULE) == 2
    assert hidden(cells) == ["b", "c"]
    assert not total.suppressed


def test_the_partner_is_chosen_by_persons_then_rows() -> None:
    cells = [cell("a", 8, rows=40), cell("b", 1), cell("c", 8, rows=9), cell("d", 10)]
    suppress(cells, None, RULE)
    assert hidden(cells) == ["b", "c"]


def test_the_total_is_withheld_when_the_suppressed_groups_together_are_small() -> None:
    cells = [cell("a", 40), cell("b", 1), cell("c", 2)]
    total = cell("", 43)
    suppress(cells, total, RULE)
    assert hidden(cells) == ["b", "c"]
    # 43 - 40 would be a cell of three persons.
    assert total.suppressed
    assert total.measure("count") is None


def test_a_small_total_is_withheld_and_a_single_small_group_too() -> None:
    only = [cell("a", 3)]
    total = cell("", 3)
    assert suppress(only, total, RULE) == 1
    assert only[0].suppressed and total.suppressed


def test_nothing_is_suppressed_when_every_group_is_large() -> None:
    cells = [cell("a", 5), cell("b", 6)]
    total = cell("", 11)
    assert suppress(cells, total, RULE) == 0
    assert not total.suppressed


@CI
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12), st.integers(2, 10))
def test_no_suppressed_cell_is_recoverable_by_subtraction(persons: list[int], k: int) -> None:
    cells = [cell(str(i), n) for i, n in enumerate(persons)]
    total = cell("", sum(persons))
    suppress(cells, total, Suppression("p", k))
    shown_small = [c for c in cells if not c.suppressed and c.values[PERSONS] < k]
    assert shown_small == []
    hidden_cells = [c for c in cells if c.suppressed]
    if not total.suppressed:
        # What the total minus the shown groups gives is the sum of several hidden cells (of at
        # least k persons), never one of them.
        assert len(hidden_cells) != 1
        assert not hidden_cells or sum(c.values[PERSONS] for c in hidden_cells) >= k
    # Without the total, the shown groups alone still never give one hidden cell away.
    assert len(hidden_cells) != 1 or len(cells) == 1


CATALOG = load_catalog(Path(__file__).resolve().parents[3] / "hub" / "demo" / "manifests")


def test_k_is_a_policy_setting_per_role_and_purpose_the_largest_applying() -> None:
    snapshot = Snapshot(
        min_group_sizes=(
            MinGroup(role="auditor", purpose="statistics", k=10),
            MinGroup(role="auditor", purpose="*", k=7),
            MinGroup(role="public", k=20),
        )
    )
    policy = SnapshotPolicy(snapshot, CATALOG)
    auditor = Principal("auditor", "audit", ("auditor",), {})
    app = Principal("app", "health", ("department_app",), {})
    assert policy.min_group(auditor, "statistics") == 10
    assert policy.min_group(auditor, "audit") == 7
    assert policy.min_group(auditor, None) == 7
    assert policy.min_group(app, "statistics") == 5


def test_the_access_record_names_the_fields_aggregated_and_the_groups_suppressed() -> None:
    record = AccessRecord("auditor", "audit", None, "7")
    assert "aggregated" not in record.summary()
    record.add_aggregate("civil_affairs.ServiceDelivery", ["districtCode", "deliveredAt"], 3)
    record.add_aggregate("finance.Expenditure", ["amount"], 0)
    summary = record.summary()
    assert summary["aggregated"] == [
        "civil_affairs.ServiceDelivery.deliveredAt",
        "civil_affairs.ServiceDelivery.districtCode",
        "finance.Expenditure.amount",
    ]
    assert summary["suppressedGroups"] == 3
