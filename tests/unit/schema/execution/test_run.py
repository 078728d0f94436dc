"""schema/execution/run.py: the answer a run assembles, here its canonical order of errors."""

from __future__ import annotations

from typing import Any, cast

from graphql import GraphQLError

from hub.access.plan import Planner
from hub.access.read import Reader
from hub.auth.principal import Principal
from schema.context import RequestContext
from schema.execution.run import answer


def _context() -> RequestContext:
    principal = Principal("app", "health", ("department_app",), {})
    return RequestContext(principal, None, cast(Reader, None), cast(Planner, None), {}, {})


def _paths(body: dict[str, Any]) -> list[tuple[Any, str]]:
    return [(error.get("path"), error["message"]) for error in body["errors"]]


def test_errors_come_ordered_by_path_then_message_whoever_reported_them_first() -> None:
    context = _context()
    context.withhold(("a", "nodes", "*", "z"), "not granted", 3)
    context.unreadable[("b", 0, "y")] = 1
    raised = [
        GraphQLError("second", path=["b", 1, "x"]),
        GraphQLError("first", path=["b", 1, "x"]),
        GraphQLError("on a", path=["a"]),
        GraphQLError("no path"),
    ]
    body = answer(context, {"a": None, "b": None}, raised, ran=True).body
    assert _paths(body) == [
        (None, "no path"),
        (["a"], "on a"),
        (["a", "nodes", "*", "z"], "z is withheld: not granted"),
        (["b", 0, "y"], "y: 1 value(s) failed their integrity check and are null"),
        (["b", 1, "x"], "first"),
        (["b", 1, "x"], "second"),
    ]


def test_the_order_does_not_depend_on_the_order_errors_were_raised_in() -> None:
    raised = [GraphQLError(f"e{n}", path=["list", n % 3, "f"]) for n in range(9)]
    one = answer(_context(), None, raised, ran=True).body
    other = answer(_context(), None, list(reversed(raised)), ran=True).body
    assert one["errors"] == other["errors"]
    assert [e["path"][1] for e in one["errors"]] == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_list_indices_and_field_names_at_the_same_step_still_compare() -> None:
    raised = [GraphQLError("named", path=["a", "b"]), GraphQLError("indexed", path=["a", 0])]
    body = answer(_context(), None, raised, ran=True).body
    assert [e["message"] for e in body["errors"]] == ["indexed", "named"]
