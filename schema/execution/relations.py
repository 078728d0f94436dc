"""Relation fields of shaped lists, completed per list: one load of the join values of all rows,
one shaping of all the related rows, and nested relations the same way, a list at a time.

The normal path calls the relation resolver once per row; each call works out its selection,
asks the request's loader for one value and completes its own list. A `Job` does for all rows
of a list what those calls do (the same decisions, the same loader, the same reports through
schema/loading.py), with what is per (relation, selection) worked out once. Whatever a job
cannot shape in one piece (a related row the normal path would report an error for) is
completed row by row by the executor's own `complete_value`.

When each report is made does not show in the answer: errors are ordered canonically and the
access extensions sorted (schema/execution/run.py), and the answer is assembled only once all
work the request started has settled, so nothing depends on event-loop turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from graphql import GraphQLField, GraphQLObjectType, GraphQLOutputType
from graphql.execution import Executor
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path, gather_with_cancel

from connectors.pacing import SLICE_ROWS, due, turn
from hub.access.read import JOIN
from hub.errors import HubError, LimitExceeded
from schema.context import RequestContext
from schema.execution.positions import ChildRows, OneRow, Rows
from schema.loading import CutRows, RelationField, RelationLoad, deliver, refusal, relation_load


class Related:
    """A relation field of a shaped selection set: loaded and completed per list."""

    def __init__(
        self,
        key: str,
        field_details: FieldDetailsList,
        field: GraphQLField,
        target: GraphQLObjectType,
        of: RelationField,
    ) -> None:
        self.key = key
        self.field_details = field_details
        self.nodes = [details.node for details in field_details]
        self.field = field
        self.type: GraphQLOutputType = field.type
        self.target = target
        self.of = of
        self.many = of.relation.many
        self.join = (JOIN, of.relation.field)
        # Per list path (a shaper serves one request): the selection, worked out once.
        self.loads: dict[tuple[str | int, ...], RelationLoad] = {}

    def load(self, executor: Executor[Any], row_path: Path) -> RelationLoad:
        star = (*("*" if isinstance(key, int) else key for key in row_path.as_list()), self.key)
        found = self.loads.get(star)
        if found is None:
            # The variables as strawberry hands them to resolvers, so `@skip` reads alike.
            variables = executor.variable_values.coerced
            found = relation_load(self.of, self.nodes, executor.fragment_definitions, variables, star, self.field)
            self.loads[star] = found
        return found


class RowShaper(Protocol):
    """What a job needs of a shaper (schema/execution/shaper.py): the objects of rows, and its relations."""

    parent: GraphQLObjectType
    related: list[Related]

    def objects(self, rows: list[dict[Any, Any]]) -> list[dict[str, Any]] | None: ...

    async def objects_paced(self, rows: list[dict[Any, Any]]) -> list[dict[str, Any]] | None: ...


@dataclass(frozen=True)
class Run:
    """One request's executor, its shapers and its context, as jobs use them."""

    executor: Executor[Any]
    shaper: Callable[[GraphQLObjectType, FieldDetailsList], RowShaper | None]
    context: RequestContext


# Per row of a list, the loader's future for its join value; None where the row has none.
Asked = list["asyncio.Future[Any] | None"]


class Job:
    """The relation fields of one list of rows, whose other fields are shaped in `objects`."""

    def __init__(
        self,
        run: Run,
        shape: RowShaper,
        rows: list[dict[Any, Any]],
        objects: list[dict[str, Any]],
        at: Rows,
        position: Any,
    ) -> None:
        self.run, self.shape = run, shape
        self.rows, self.objects, self.at, self.position = rows, objects, at, position
        # Per relation field: the values each related row counts for in the request's budget,
        # and the field's path with list indices as `*` (where a failed load is reported).
        self.widths: dict[Related, int] = {}
        self.paths: dict[Related, tuple[str | int, ...]] = {}

    async def complete(self) -> None:
        """Fills in every relation field of every row. Each field's loader is asked for all the
        rows' join values before anything is awaited, so one batch serves the whole list."""
        context = self.run.context
        indices = range(len(self.rows))
        if self._spent(indices):
            return
        fields: list[Awaitable[None]] = []
        for entry in self.shape.related:
            try:
                load = entry.load(self.run.executor, self.at.path(0))
                reason = refusal(context, load.relation)
            except Exception as error:
                self._fail(entry, [(index, error) for index in indices])
                continue
            if reason is not None:
                # One error per (relation, list) with a count, as the resolver reports it; the
                # field stays null.
                context.withhold(load.path, reason, len(self.rows))
                continue
            self.widths[entry] = load.width
            self.paths[entry] = load.path
            fields.append(self._field(entry, self._ask(entry, load)))
        if len(fields) == 1:
            await fields[0]
        elif fields:
            await gather_with_cancel(*fields)

    def _ask(self, entry: Related, load: RelationLoad) -> Asked:
        ask = load.loader(self.run.context).load
        asked: dict[Any, asyncio.Future[Any]] = {}
        futures: Asked = []
        for row in self.rows:
            value = row.get(entry.join)
            if value is None:
                futures.append(None)
                continue
            future = asked.get(value)
            if future is None:
                # DataLoader.load hands out its futures, cached or new.
                future = asked[value] = cast("asyncio.Future[Any]", ask(value))
            futures.append(future)
        return futures

    async def _field(self, entry: Related, futures: Asked) -> None:
        waiting = {future for future in futures if future is not None and not future.done()}
        if waiting:
            # Waits for every load without raising: a failed one is reported row by row below.
            await asyncio.wait(waiting)
        empty: list[Any] | None = [] if entry.many else None
        outcomes = [(index, empty if future is None else _outcome(future)) for index, future in enumerate(futures)]
        await self._complete(entry, outcomes)

    async def _complete(self, entry: Related, outcomes: list[tuple[int, Any]]) -> None:
        """Fills in one field of rows whose loads are done: their related rows shaped as one list."""
        if self._spent([index for index, _ in outcomes], entry):
            return
        failed = [(index, value) for index, value in outcomes if isinstance(value, Exception)]
        if failed:
            self._fail_loads(entry, failed)
        loaded = [(index, value) for index, value in outcomes if not isinstance(value, Exception)]
        if not self._deliver(entry, loaded):
            return
        values = [(index, _value(entry, value)) for index, value in loaded]
        flat: list[dict[Any, Any]] = []
        origins: list[tuple[int, int | None]] = []
        # The lists of a relation under every row of a long list (a hundred residents under
        # each of 1,500 rows) hold more rows than the largest page: gathered, shaped and placed
        # in slices, with turns for the loop between (connectors/pacing.py).
        since = 0
        for index, value in values:
            if entry.many:
                flat.extend(value)
                origins.extend((index, place) for place in range(len(value)))
                since += len(value)
                if since >= SLICE_ROWS:
                    since = 0
                    if due():
                        await turn()
            elif value is not None:
                flat.append(value)
                origins.append((index, None))
        key, objects = entry.key, self.objects
        child = self.run.shaper(entry.target, entry.field_details) if flat else None
        shaped = None if child is None else await child.objects_paced(flat)
        if flat and (child is None or shaped is None):
            await self._complete_each(entry, values)
            return
        placed = iter(shaped or ())
        since = 0
        for index, value in values:
            if entry.many:
                objects[index][key] = [next(placed) for _ in value]
                since += len(value)
                if since >= SLICE_ROWS:
                    since = 0
                    if due():
                        await turn()
            else:
                objects[index][key] = None if value is None else next(placed)
        if child is not None and shaped and child.related:
            # The related rows' own relations: one job for all of them.
            at = ChildRows(self.at, entry.key, self.shape.parent.name, origins)
            await Job(self.run, child, flat, shaped, at, self.position).complete()

    def _spent(self, indices: Iterable[int], entry: Related | None = None) -> bool:
        """Whether the request is past its value budget; if so these rows' relation fields (or
        `entry`'s alone) are null at once, without an error each: the answer will hold no
        data, only the budget's one error, and a refused request should cost little more."""
        if self.run.context.current.budget.exceeded is None:
            return False
        for entry_ in self.shape.related if entry is None else (entry,):
            for index in indices:
                self.objects[index][entry_.key] = None
        return True

    def _deliver(self, entry: Related, loaded: list[tuple[int, Any]]) -> bool:
        """Counts the rows about to be placed against the request's budget and reports the
        lists cut at their bound, as the relation resolver does row by row; False where the
        budget is spent (the request then answers no data, so one row carries the error)."""
        context = self.run.context
        # A to-one field's outcome is its loaded rows, or None where the row had no join value.
        placed = sum(len(rows) if entry.many else int(bool(rows)) for _, rows in loaded)
        try:
            deliver(context, self.widths[entry], placed)
        except LimitExceeded as error:
            if loaded:
                self._fail(entry, [(loaded[0][0], error)])
            return False
        if entry.many:
            for index, rows in loaded:
                if type(rows) is CutRows:
                    context.truncated.add(tuple(self._field_path(entry, index).as_list()))
        return True

    async def _complete_each(self, entry: Related, values: list[tuple[int, Any]]) -> None:
        """The normal path's completion, row by row: it reports what the shaper would not."""
        executor, parent = self.run.executor, self.shape.parent
        info = executor.build_resolve_info(entry.field, entry.nodes, parent, self._field_path(entry, values[0][0]))
        waits: list[Awaitable[None]] = []
        for index, value in values:
            path = self._field_path(entry, index)
            try:
                completed = executor.complete_value(entry.type, entry.field_details, info, path, value, self.position)
            except Exception as error:
                self._fail(entry, [(index, error)], path)
                continue
            if executor.is_awaitable(completed):
                waits.append(self._settle(entry, index, path, completed))
            else:
                self.objects[index][entry.key] = completed
        if waits:
            await asyncio.gather(*waits)

    async def _settle(self, entry: Related, index: int, path: Path, completed: Awaitable[Any]) -> None:
        try:
            self.objects[index][entry.key] = await completed
        except Exception as error:
            self._fail(entry, [(index, error)], path)

    def _fail_loads(self, entry: Related, failed: list[tuple[int, Exception]]) -> None:
        """Rows whose load failed: a caller's error (the department unavailable, most often) is
        the same for every row, and is reported once for the list with a count, as the
        relation resolver reports it; an internal error is each row's own, as the executor
        reports any other."""
        context, path = self.run.context, self.paths[entry]
        own: list[tuple[int, Exception]] = []
        for index, error in failed:
            if isinstance(error, HubError) and error.code != "INTERNAL":
                context.fail_relation(path, error, 1)
                self.objects[index][entry.key] = None
            else:
                own.append((index, error))
        self._fail(entry, own)

    def _fail(self, entry: Related, errors: Iterable[tuple[int, Exception]], path: Path | None = None) -> None:
        # The relation is nullable: each row's field is null with its own located error.
        executor = self.run.executor
        for index, error in errors:
            executor.handle_field_error(error, entry.type, entry.field_details, path or self._field_path(entry, index))
            self.objects[index][entry.key] = None

    def _field_path(self, entry: Related, index: int) -> Path:
        return Path(self.at.path(index), entry.key, self.shape.parent.name)


def _outcome(future: asyncio.Future[Any]) -> Any:
    error = future.exception()
    return error if error is not None else future.result()


def _value(entry: Related, rows: Any) -> Any:
    return rows if entry.many else (rows[0] if rows else None)


async def pending(
    run: Run, shape: RowShaper, rows: list[dict[Any, Any]], objects: list[dict[str, Any]], at: Rows, position: Any
) -> Any:
    """The objects of `rows` (shaped in `objects`) once their relations are complete: the list,
    or the one object of a single row."""
    await Job(run, shape, rows, objects, at, position).complete()
    return objects[0] if isinstance(at, OneRow) else objects
