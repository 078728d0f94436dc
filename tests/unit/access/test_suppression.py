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


# Rows as a department keeps them: (group, person, amount in cents).
Rows = list[tuple[str, str, int]]


def answer(rows: Rows) -> tuple[list[Cell], Cell]:
    """The cells one aggregate statement gives for `rows`: per group and over every row, the
    count, the sum and the distinct persons."""
    cells: list[Cell] = []
    for name in sorted({group for group, _, _ in rows}):
        mine = [row for row in rows if row[0] == name]
        values = {"count": len(mine), "sum.amount": sum(a for _, _, a in mine), PERSONS: len({p for _, p, _ in mine})}
        cells.append(Cell({"district": name}, values))
    everything = {"count": len(rows), "sum.amount": sum(a for _, _, a in rows), PERSONS: len({p for _, p, _ in rows})}
    return cells, Cell({}, everything)


def subtraction(cells: list[Cell], total: Cell, label: str) -> int | None:
    """What an attacker reads off one answer: the total minus every shown group, or None
    where the answer withholds the total."""
    if total.measure(label) is None:
        return None
    return int(total.measure(label)) - sum(int(c.measure(label)) for c in cells if not c.suppressed)


def test_an_attacker_cannot_recover_one_persons_amount_spread_over_suppressed_groups() -> None:
    # One person has a delivery in each of five small districts; forty others live in a large one.
    # Counted per group, the suppressed groups hold five persons, but it is one person five times:
    # the total minus the large district would be that person's amount, to the cent.
    rows: Rows = [("big", f"p{i}", 1000 + i) for i in range(40)]
    rows += [(district, "target", 73_00 + n) for n, district in enumerate("vwxyz")]
    cells, total = answer(rows)
    suppress(cells, total, RULE)
    assert hidden(cells) == list("vwxyz")
    assert subtraction(cells, total, "sum.amount") is None
    assert subtraction(cells, total, "count") is None


def test_persons_in_two_suppressed_groups_are_counted_once() -> None:
    # b and c hold three persons each, the same three: six counted per group, three in truth.
    rows: Rows = [("a", f"p{i}", 10) for i in range(20)]
    rows += [(g, p, 5) for g in "bc" for p in ("x", "y", "z")]
    cells, total = answer(rows)
    suppress(cells, total, RULE)
    assert hidden(cells) == ["b", "c"]
    assert total.suppressed


def test_the_total_stays_where_the_suppressed_groups_hold_k_persons_between_them() -> None:
    # The same shape with distinct persons in b and c: the difference is a cell of six persons.
    rows: Rows = [("a", f"p{i}", 10) for i in range(20)]
    rows += [("b", p, 5) for p in ("x", "y", "z")] + [("c", p, 5) for p in ("u", "v", "w")]
    cells, total = answer(rows)
    suppress(cells, total, RULE)
    assert hidden(cells) == ["b", "c"]
    assert subtraction(cells, total, "count") == 6


def test_the_total_is_withheld_where_it_would_show_each_suppressed_group_holds_one_row() -> None:
    # Five small districts of one delivery each: five suppressed groups and a difference of five
    # rows would say each holds exactly one.
    rows: Rows = [("big", f"p{i}", 10) for i in range(30)] + [(d, f"q{d}", 10) for d in "vwxyz"]
    cells, total = answer(rows)
    suppress(cells, total, RULE)
    assert len(hidden(cells)) == 5
    assert total.suppressed


@CI
@given(
    st.lists(
        st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 30), st.integers(-500, 5000)), min_size=1, max_size=120
    ),
    st.integers(2, 10),
)
def test_no_suppressed_cell_is_recoverable_by_subtraction(drawn: list[tuple[str, int, int]], k: int) -> None:
    # Random memberships: a person may have rows in any number of groups.
    rows: Rows = [(group, f"p{person}", amount) for group, person, amount in drawn]
    cells, total = answer(rows)
    suppress(cells, total, Suppression("p", k))
    assert [c for c in cells if not c.suppressed and c.values[PERSONS] < k] == []
    hidden_cells = [c for c in cells if c.suppressed]
    hidden_names = {c.key["district"] for c in hidden_cells}
    # Without the total, the shown groups alone never give one hidden cell away.
    assert len(hidden_cells) != 1 or len(cells) == 1
    if total.suppressed:
        return
    assert total.values[PERSONS] >= k
    if not hidden_cells:
        return
    # What the total minus the shown groups gives: the rows of the hidden groups, about at least
    # k distinct persons, never one hidden cell, and not telling any hidden cell's count.
    remainder = [row for row in rows if row[0] in hidden_names]
    assert subtraction(cells, total, "count") == len(remainder)
    assert subtraction(cells, total, "sum.amount") == sum(a for _, _, a in remainder)
    assert len({p for _, p, _ in remainder}) >= k
    assert len(hidden_cells) >= 2
    assert len(remainder) > len(hidden_cells)


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
