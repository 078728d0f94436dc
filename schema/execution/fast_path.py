"""The fast completion path: the executor strawberry hands to graphql-core, which completes
lists of generated entity rows (and single entity rows) with a shaper instead of field by field.

Only generated entity types whose values are plain row dicts take it; everything else (the
connection wrapper, page info, admin, policy and lineage types, custom resolvers) keeps
graphql-core's normal path. The rows arrive released: the reader has decided each column once
and decrypted and masked it column-wise, so nothing here runs per field or per row; relation
fields are loaded and shaped per list (schema/execution/relations.py).

The response is the normal path's, byte for byte:
tests/unit/schema/execution/test_fast_path_differential.py runs generated queries through both
and compares them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any, cast

from graphql import GraphQLList, GraphQLObjectType, GraphQLOutputType, GraphQLResolveInfo, is_non_null_type
from graphql.execution import Executor
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from connectors.pacing import SLICE_ROWS
from hub.encoding import EncodedList
from schema.context import RequestContext
from schema.execution.relations import Run
from schema.execution.shaper import Shaper, prepare

DICTS = {dict}


class HubExecutor(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, which hands the request the work it leaves running: what
    graphql-core settles in the background after an error nulled its parent. The answer is
    assembled once that work has settled too (schema/execution/run.py), so what it reports
    never depends on when it ends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        context = self.context_value
        if isinstance(context, RequestContext):
            # Shared with graphql-core's sub-executors, which copy the executor shallowly.
            context.background = self.background_futures
            context.releases.append(self.release)

    def release(self) -> None:
        """Breaks the cycles through this executor once the request's answer is made
        (RequestContext.release), no work of the request left running: graphql-core's helpers
        for resolvers hold this executor's own methods, and it holds the request's context; an
        error a resolver raised holds the resolver's frame, which holds those helpers. The
        answer is made: errors need their tracebacks no more (INTERNAL ones were logged)."""
        del self.async_helpers
        for error in self.collected_errors.errors:
            error.__traceback__ = None
            if error.original_error is not None:
                error.original_error.__traceback__ = None


class FastExecutor(HubExecutor):
    """The hub's executor, with entity rows completed by shapers; made by `fast_executor`."""

    # Set on the subclass `fast_executor` makes for one schema.
    entity_types: Collection[str] = frozenset()
    default_resolver: Callable[..., Any] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        middleware = self.middleware_manager
        # Middleware wraps every resolver, and shapers call none for plain fields; operations
        # that turn error propagation off, or can be aborted, keep the normal path throughout.
        self.fast = (
            self.error_propagation and self.abort_signal is None and (middleware is None or not middleware.middlewares)
        )
        # Keyed like graphql-core's own memo of subfields: the field list's identity, kept alive.
        self.shapers: dict[tuple[GraphQLObjectType, int], tuple[FieldDetailsList, Shaper | None]] = {}
        # Relations are completed per list with the request's context; without one (a schema
        # executed bare) shapers refuse selection sets with relations.
        context = self.context_value
        self.run = Run(self, self.shaper, context) if isinstance(context, RequestContext) else None

    def release(self) -> None:
        # The run of relations holds this executor too.
        super().release()
        self.run = None
        self.shapers.clear()

    def shaper(self, parent: GraphQLObjectType, field_details: FieldDetailsList) -> Shaper | None:
        key = (parent, id(field_details))
        found = self.shapers.get(key)
        if found is not None:
            return found[1]
        shaper: Shaper | None = None
        if self.default_resolver is not None:
            grouped, defer_usages, _ = self.collect_subfields(parent, field_details)
            if not defer_usages:
                shaper = prepare(self.schema, parent, grouped, self.default_resolver, self._subfields)
        self.shapers[key] = (field_details, shaper)
        return shaper

    def _subfields(self, parent: GraphQLObjectType, field_details: FieldDetailsList) -> GroupedFieldSet | None:
        grouped, defer_usages, _ = self.collect_subfields(parent, field_details)
        return None if defer_usages else grouped

    def _entity(self, return_type: GraphQLOutputType) -> GraphQLObjectType | None:
        named = return_type.of_type if is_non_null_type(return_type) else return_type
        if isinstance(named, GraphQLObjectType) and named.name in self.entity_types:
            return named
        return None

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        entity = self._entity(return_type.of_type) if self.fast and type(result) is list else None
        if entity is not None and set(map(type, result)) <= DICTS:
            shaper = self.shaper(entity, field_details_list)
            if shaper is not None and len(result) > SLICE_ROWS:
                # Shaped a slice at a time, other requests served between (connectors/pacing.py);
                # graphql-core takes the EncodedList it may give as the list's value.
                return self._paced(  # type: ignore[return-value]
                    shaper, return_type, field_details_list, info, path, result, position_context
                )
            shaped = None if shaper is None else shaper.many(self.run, result, path, position_context)
            if shaped is not None:
                return shaped
        return super().complete_list_value(return_type, field_details_list, info, path, result, position_context)

    async def _paced(
        self,
        shaper: Shaper,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: list[Any],
        position_context: Any,
    ) -> list[Any] | EncodedList:
        # A list without relations comes encoded (EncodedList): graphql-core places it as it
        # is, and the hub's encoders of answers write it where the list goes (hub/encoding.py).
        shaped = await shaper.many_paced(self.run, result, path, position_context)
        if shaped is not None:
            return shaped
        completed = super().complete_list_value(return_type, field_details_list, info, path, result, position_context)
        if self.is_awaitable(completed):
            return await completed  # type: ignore[no-any-return]
        return completed  # type: ignore[return-value]

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        # One entity row (a by-key field, a to-one relation): the same shaper, for one row.
        if self.fast and type(result) is dict and return_type.name in self.entity_types:
            shaper = self.shaper(return_type, field_details_list)
            shaped = None if shaper is None else shaper.one(self.run, result, path, position_context)
            if shaped is not None:
                return shaped
        return super().complete_object_value(return_type, field_details_list, info, path, result, position_context)


def fast_executor(entity_types: Iterable[str], default_resolver: Callable[..., Any]) -> type[Executor[Any]]:
    """The executor class for a schema whose generated entity types are `entity_types`, whose
    plain fields read row dicts through `default_resolver` (the one in its StrawberryConfig)."""
    namespace = {"entity_types": frozenset(entity_types), "default_resolver": staticmethod(default_resolver)}
    return cast(type[Executor[Any]], type("HubExecutor", (FastExecutor,), namespace))
