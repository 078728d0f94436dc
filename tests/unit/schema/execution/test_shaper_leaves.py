"""A shaper's plain columns give what graphql-core's scalar serialisers give: Int and Boolean
columns pass their values through untouched only where the serialiser would return them as
they are, and refuse (leaving the list to the normal path, which reports the error) where it
would raise."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT, GraphQLBoolean, GraphQLInt
from graphql.pyutils import Undefined

from schema.execution.shaper import _leaf


def serialised(scalar: Any, raw: list[Any]) -> list[Any] | None:
    """What completing each value with graphql-core gives; None where one raises."""
    try:
        return [None if value is None else scalar.serialize(value) for value in raw]
    except Exception:
        return None


@pytest.mark.parametrize(
    "raw",
    [
        [1, 2, None, 0],
        [GRAPHQL_MAX_INT, GRAPHQL_MIN_INT],
        [GRAPHQL_MAX_INT + 1, 3],
        [2.0, 1],
        [True, 3],
        [2.5],
        [None, None],
    ],
)
def test_an_int_column_is_completed_as_graphql_core_completes_it(raw: list[Any]) -> None:
    leaf = _leaf("n", GraphQLInt, non_null=False)
    got = leaf.values(raw)
    assert (None if got is None else list(got)) == serialised(GraphQLInt, raw)
    for value in raw:
        one = leaf.one(value)
        want = serialised(GraphQLInt, [value])
        assert (one is Undefined and want is None) or [one] == want
        # Never a bool where an int is due, nor the reverse.
        assert one is Undefined or type(one) is type(want[0])  # type: ignore[index]


@pytest.mark.parametrize("raw", [[True, False, None], [1, 0], [0.0, True]])
def test_a_boolean_column_is_completed_as_graphql_core_completes_it(raw: list[Any]) -> None:
    leaf = _leaf("b", GraphQLBoolean, non_null=False)
    got = leaf.values(raw)
    assert (None if got is None else list(got)) == serialised(GraphQLBoolean, raw)
    assert [type(v) for v in got or []] == [type(v) for v in serialised(GraphQLBoolean, raw) or []]


def test_a_null_in_a_non_null_int_column_refuses_the_list() -> None:
    assert _leaf("n", GraphQLInt, non_null=True).values([1, None]) is None
