"""Which edges a trace walks from an entity, and which way, in each direction."""

from __future__ import annotations

from hub.demo.catalog import demo_catalog
from hub.lineage.edges import Direction, kinds_between, steps_from, typed_edges


def reached(entity: str, direction: Direction) -> set[tuple[str, str]]:
    return {(step.kind, step.to) for step in steps_from(demo_catalog(), entity, direction)}


def test_downstream_from_a_budget_line_reaches_its_expenditures_only() -> None:
    assert reached("finance.BudgetLine", Direction.DOWNSTREAM) == {("allocated_from", "finance.Expenditure")}
    assert reached("finance.BudgetLine", Direction.UPSTREAM) == set()


def test_downstream_from_a_delivery_goes_to_the_request_and_person_not_back_to_the_money() -> None:
    steps = reached("civil_affairs.ServiceDelivery", Direction.DOWNSTREAM)
    assert ("fulfils", "hotline.Request") in steps and ("about_person", "population.Person") in steps
    assert ("feedback_on", "hotline.Feedback") in steps
    assert not any(kind == "funded_by" for kind, _ in steps)


def test_upstream_from_a_request_reaches_the_deliveries_that_answered_it() -> None:
    steps = reached("hotline.Request", Direction.UPSTREAM)
    assert ("fulfils", "education.ServiceDelivery") in steps
    assert ("feedback_on", "hotline.Feedback") not in steps


def test_both_directions_are_the_union() -> None:
    both = reached("finance.Expenditure", Direction.BOTH)
    assert both == reached("finance.Expenditure", Direction.UPSTREAM) | reached(
        "finance.Expenditure", Direction.DOWNSTREAM
    )


def test_kinds_filter_limits_the_steps() -> None:
    steps = steps_from(demo_catalog(), "civil_affairs.ServiceDelivery", Direction.BOTH, frozenset({"funded_by"}))
    assert {s.kind for s in steps} == {"funded_by"}


def test_the_kinds_between_two_entities_follow_their_roles() -> None:
    catalog = demo_catalog()
    assert kinds_between(catalog, "human_resources.ServiceDelivery", "hotline.Request") == ["fulfils"]
    assert kinds_between(catalog, "finance.BudgetLine", "hotline.Request") == []
    assert len(typed_edges(catalog)) >= 15
