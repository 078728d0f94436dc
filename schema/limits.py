"""Demand control: the limits an operation must keep before anything runs for it.

Depth, aliases, directives and cost (schema/demand.py measures them once per compiled
document) are checked on every request against the caller's limits, which may differ per role
(settings `HUB_MAX_DEPTH`, `HUB_MAX_ALIASES`, `HUB_MAX_DIRECTIVES`, `HUB_MAX_COST`); tokens are
checked while parsing, the same for everyone, since parsing is what the limit protects. A
document past what the most generous role may run is refused when it is compiled, before
validation. A refusal is HTTP 400 with one LIMIT_EXCEEDED error naming the limit, the value
and the maximum, checked before the lookup quota counts anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema

from hub.accountability.bound import ROW_VALUES
from hub.config import Settings, load_settings
from schema.demand import Demand, Pages, introspection_bounds, measure
from schema.errors import format_error, limit_exceeded
from schema.execution.operation import Answer, Operation

# The order limits are checked in; a refusal names the first one exceeded.
LIMITS = ("depth", "aliases", "directives", "cost")


class DemandControl:
    """The limits of one hub, bound to its schema once it is built."""

    def __init__(self, settings: Settings | None = None) -> None:
        # Without settings (tools, tests of the schema alone), the defaults.
        self.settings = settings if settings is not None else load_settings({})
        self.pages: Pages | None = None
        self.schema: GraphQLSchema | None = None
        self._maxima: dict[tuple[str, ...], dict[str, int]] = {}

    def bind(
        self,
        schema: GraphQLSchema,
        entity_types: Iterable[str],
        aggregates: Iterable[str] = (),
        reports: Iterable[str] = (),
    ) -> None:
        settings = self.settings
        self.schema = schema
        self.pages = Pages(
            settings.default_page_size,
            settings.max_page_size,
            settings.relation_page_size,
            frozenset(entity_types),
            introspection_bounds(schema),
            settings.max_semijoin_keys,
            frozenset(aggregates),
            {name: settings.max_report_rows * ROW_VALUES for name in reports},
        )

    def measure(self, document: DocumentNode) -> tuple[Demand, ...]:
        assert self.schema is not None and self.pages is not None, "bind() the limits to their schema first"
        return measure(self.schema, self.pages, document)

    def screen(self, document: DocumentNode) -> tuple[tuple[Demand, ...], GraphQLError | None]:
        """The demands of `document`, and its refusal if an operation is past what the most
        generous role may run (its cost counted with every page-size variable at 0, the least
        it can cost)."""
        demands = self.measure(document)
        for demand in demands:
            error = self._over(demand, self.settings.largest_limit, None, least=True)
            if error is not None:
                return demands, error
        return demands, None

    def refusal(self, operation: Operation, roles: Iterable[str]) -> Answer | None:
        """The answer refusing `operation` to a caller with `roles`, or None if it is within
        their limits (or does not parse or validate, which is reported when it runs)."""
        compiled = operation.document
        refused = next((e for e in compiled.errors if _is_limit(e)), None)
        if refused is None and compiled.runnable:
            demand = compiled.demand(operation.name)
            if demand is not None:
                refused = self._over(demand, self._maxima_of(tuple(roles)).__getitem__, operation.variables)
        if refused is None:
            return None
        return Answer(400, {"errors": [format_error(refused)], "data": None})

    def _maxima_of(self, roles: tuple[str, ...]) -> dict[str, int]:
        """Each limit of a caller with `roles`: fixed by the settings, so worked out once per
        set of roles (and per this object's settings), not on every request."""
        maxima = self._maxima.get(roles)
        if maxima is None:
            maxima = self._maxima[roles] = {name: self.settings.limit(name, roles) for name in LIMITS}
        return maxima

    def _over(
        self,
        demand: Demand,
        maximum: Callable[[str], int],
        variables: Mapping[str, Any] | None,
        least: bool = False,
    ) -> GraphQLError | None:
        assert self.pages is not None
        for limit in LIMITS:
            if limit == "cost":
                value = demand.cost(self.pages, variables) if not least else dict(demand.price).get((), 0)
            else:
                value = getattr(demand, limit)
            most = maximum(limit)
            if value > most:
                return limit_exceeded(limit, value, most, _message(demand, limit, value, most))
        return None


def _message(demand: Demand, limit: str, value: int, most: int) -> str:
    what = "the operation" if demand.operation is None else f"the operation {demand.operation[:80]!r}"
    if limit == "depth":
        return f"{what} is {value} levels deep; at most {most} are allowed"
    if limit == "cost":
        return f"{what} costs {value} (fields times the rows each list may hold); at most {most} is allowed"
    return f"{what} uses {value} {limit}; at most {most} are allowed"


def _is_limit(error: GraphQLError) -> bool:
    extensions = error.extensions or {}
    return extensions.get("code") == "LIMIT_EXCEEDED" and "limit" in extensions
