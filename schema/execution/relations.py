"""Relation fields of shaped lists, completed per list: one load of the join values of all rows,
one shaping of all the related rows, and nested relations the same way, a list at a time.

The normal path calls the relation resolver once per row; each call works out its selection,
asks the request's loader for one value and completes its own list. A `Job` does for all rows
of a list what those calls do (the same decisions, the same loader, the same reports through
schema/resolvers.py), with what is per (relation, selection) worked out once.

Effects keep the normal path's order: the response lists withheld paths in the order they were
reported, and loaders batch the keys asked for before they dispatch. So a job starts when the
normal path's resolvers would run (a list of more than one row gathers its rows, a row of more
than one relation gathers its fields: one event-loop turn each), asks the loader in row order,
and continues when the loader's results arrive, as the resolvers would have. Whatever a job
cannot shape in one piece (a related row the normal path would report an error for) is
completed row by row by the executor's own `complete_value`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any, Protocol, cast

from graphql import GraphQLField, GraphQLObjectType, GraphQLOutputType
from graphql.execution import Executor
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path

from hub.access.read import JOIN
from hub.errors import LimitExceeded
from schema.context import RequestContext
from schema.execution.completion import Completion
from schema.execution.positions import ChildRows, OneRow, Rows
from schema.resolvers import CutRows, RelationField, RelationLoad, deliver, refusal, relation_load


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
            found = relation_load(self.of, self.nodes, executor.fragment_definitions, variables, star)
            self.loads[star] = found
        return found


class RowShaper(Protocol):
    """What a job needs of a shaper (schema/execution/shaper.py): the objects of rows, and its relations."""

    parent: GraphQLObjectType
    related: list[Related]

    def objects(self, rows: list[dict[Any, Any]]) -> list[dict[str, Any]] | None: ...


@dataclass(frozen=True)
class Run:
    """One request's executor, its shapers and its context, as jobs use them."""

    executor: Executor[Any]
    shaper: Callable[[GraphQLObjectType, FieldDetailsList], RowShaper | None]
    context: RequestContext


# (delay in event-loop turns, row indices): rows whose relations start together.
Groups = list[tuple[int, list[int]]]
Ask = Callable[[Any], asyncio.Future[Any]]


class Job:
    """The relation fields of one list of rows, whose other fields are shaped in `objects`."""

    def __init__(
        self,
        run: Run,
        completion: Completion,
        shape: RowShaper,
        rows: list[dict[Any, Any]],
        objects: list[dict[str, Any]],
        at: Rows,
        turns: list[int],
        position: Any,
    ) -> None:
        self.run, self.completion, self.shape = run, completion, shape
        self.rows, self.objects, self.at, self.position = rows, objects, at, position
        # Per row: the turns from its fields' completion to the whole list's, as gathered on
        # the normal path (its own row and list, and those of the rows it hangs under).
        self.turns = turns
        # Per relation field: rows whose loads are in flight, in the order they were asked.
        self.pending: dict[Related, list[tuple[int, asyncio.Future[Any]]]] = {}
        # Per relation field: the values each related row counts for in the request's budget.
        self.widths: dict[Related, int] = {}

    def begin(self, groups: Groups) -> None:
        """Starts each group after its delay; groups in the order of their first rows."""
        for delay, indices in groups:
            self.completion.later(delay, self._start, indices)

    def _start(self, indices: list[int]) -> None:
        """What the relation resolvers of these rows do before they wait: refuse, or ask."""
        run, rows = self.run, self.rows
        context = run.context
        if self._spent(indices):
            return
        asking: list[tuple[Related, Ask, dict[Any, asyncio.Future[Any]]]] = []
        done: list[int] = []
        for entry in self.shape.related:
            try:
                load = entry.load(run.executor, self.at.path(indices[0]))
                reason = refusal(context, load.relation)
            except Exception as error:
                self._fail(entry, [(index, error) for index in indices])
                done.extend(indices)
                continue
            if reason is not None:
                # One error per (relation, list) with a count, as the resolver reports it.
                context.withhold(load.path, reason, len(indices))
                done.extend(indices)
                continue
            self.widths[entry] = load.width
            # DataLoader.load hands out its futures, cached or new: the job watches them.
            asking.append((entry, cast(Ask, load.loader(context).load), {}))
        self._done(done)
        # Row by row, fields in selection order: the resolvers' order, so every loader sees its
        # keys, and the loaders their first keys, as on the normal path.
        for index in indices:
            row = rows[index]
            for entry, ask, asked in asking:
                value = row.get(entry.join)
                if value is not None and value not in asked:
                    asked[value] = ask(value)
        for entry, _, asked in asking:
            ready: list[tuple[int, Any]] = []
            waiting: list[tuple[int, asyncio.Future[Any]]] = []
            for index in indices:
                value = rows[index].get(entry.join)
                future = None if value is None else asked[value]
                if future is None:
                    ready.append((index, [] if entry.many else None))
                elif future.done():
                    ready.append((index, _outcome(future)))
                else:
                    waiting.append((index, future))
            if ready:
                self._complete(entry, ready)
            if waiting:
                self._wait(entry, waiting)

    def _done(self, indices: Iterable[int]) -> None:
        # Fields of these rows are complete now: the latest of their gatherings counts.
        turns = max((self.turns[index] for index in indices), default=0)
        if turns:
            self.completion.hold(turns)

    def _wait(self, entry: Related, waiting: list[tuple[int, asyncio.Future[Any]]]) -> None:
        # One callback at a time per field, where the first waiting row's resolver would wake:
        # it completes every row ready by then, whichever turn their loads started in.
        pending = self.pending.setdefault(entry, [])
        pending.extend(waiting)
        if len(pending) == len(waiting):
            self._arm(entry)

    def _arm(self, entry: Related) -> None:
        completion = self.completion
        completion.waiting += 1
        index, future = self.pending[entry][0]
        future.add_done_callback(lambda _: completion.step(self._woken, entry, held=True))
        completion.direct = future if not self.turns[index] else None

    def _woken(self, entry: Related) -> None:
        self.completion.direct = None
        pending = self.pending[entry]
        ready = sorted(((index, _outcome(future)) for index, future in pending if future.done()), key=itemgetter(0))
        pending[:] = [(index, future) for index, future in pending if not future.done()]
        self._complete(entry, ready)
        if pending:
            self._arm(entry)

    def _complete(self, entry: Related, outcomes: list[tuple[int, Any]]) -> None:
        """Fills in one field of rows whose loads are done: their related rows shaped as one list."""
        if self._spent([index for index, _ in outcomes], entry):
            return
        errors = [(index, value) for index, value in outcomes if isinstance(value, Exception)]
        if errors:
            self._fail(entry, errors)
            self._done(index for index, _ in errors)
        loaded = [(index, value) for index, value in outcomes if not isinstance(value, Exception)]
        if not self._deliver(entry, loaded):
            return
        values = [(index, _value(entry, value)) for index, value in loaded]
        flat: list[dict[Any, Any]] = []
        origins: list[tuple[int, int | None]] = []
        empty: list[int] = []
        for index, value in values:
            if entry.many:
                flat.extend(value)
                origins.extend((index, place) for place in range(len(value)))
            elif value is not None:
                flat.append(value)
                origins.append((index, None))
            if not value:
                empty.append(index)
        key, objects = entry.key, self.objects
        child = self.run.shaper(entry.target, entry.field_details) if flat else None
        shaped = None if child is None else child.objects(flat)
        if flat and (child is None or shaped is None):
            self._complete_each(entry, values)
            return
        placed = iter(shaped or ())
        for index, value in values:
            if entry.many:
                objects[index][key] = [next(placed) for _ in value]
            else:
                objects[index][key] = None if value is None else next(placed)
        if child is not None and shaped and child.related:
            # Rows with related rows are complete when those rows' own relations are.
            self._done(empty)
            self._nest(entry, child, flat, shaped, origins)
        else:
            self._done(index for index, _ in values)

    def _spent(self, indices: list[int], entry: Related | None = None) -> bool:
        """Whether the request is past its value budget; if so these rows' relation fields (or
        `entry`'s alone) are null at once, without an error each: the answer will hold no
        data, only the budget's one error, and a refused request should cost little more."""
        if self.run.context.current.budget.exceeded is None:
            return False
        for entry_ in self.shape.related if entry is None else (entry,):
            for index in indices:
                self.objects[index][entry_.key] = None
        self._done(indices)
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
                for index, _ in loaded[1:]:
                    self.objects[index][entry.key] = None
                self._done(index for index, _ in loaded)
            return False
        if entry.many:
            for index, rows in loaded:
                if type(rows) is CutRows:
                    context.truncated.add(tuple(self._field_path(entry, index).as_list()))
        return True

    def _nest(
        self,
        entry: Related,
        child: RowShaper,
        flat: list[dict[Any, Any]],
        shaped: list[dict[str, Any]],
        origins: list[tuple[int, int | None]],
    ) -> None:
        """The related rows' own relations: one job for all of them, each row starting when the
        normal path would start it (after its list's gathering, and its fields')."""
        fields = len(child.related) > 1
        sizes: dict[int, int] = {}
        for parent, _ in origins:
            sizes[parent] = sizes.get(parent, 0) + 1
        delays = [int(fields) + int(entry.many and sizes[parent] > 1) for parent, _ in origins]
        turns = [2 * delay + self.turns[parent] for delay, (parent, _) in zip(delays, origins, strict=True)]
        first: dict[int, int] = {}
        for position, delay in enumerate(delays):
            first.setdefault(delay, position)
        groups = [
            (delay, [position for position, d in enumerate(delays) if d == delay])
            for delay in sorted(first, key=first.__getitem__)
        ]
        at = ChildRows(self.at, entry.key, self.shape.parent.name, origins)
        Job(self.run, self.completion, child, flat, shaped, at, turns, self.position).begin(groups)

    def _complete_each(self, entry: Related, values: list[tuple[int, Any]]) -> None:
        """The normal path's completion, row by row: it reports what the shaper would not."""
        executor, parent = self.run.executor, self.shape.parent
        info = executor.build_resolve_info(entry.field, entry.nodes, parent, self._field_path(entry, values[0][0]))
        done: list[int] = []
        for index, value in values:
            path = self._field_path(entry, index)
            try:
                completed = executor.complete_value(entry.type, entry.field_details, info, path, value, self.position)
            except Exception as error:
                executor.handle_field_error(error, entry.type, entry.field_details, path)
                self.objects[index][entry.key] = None
                done.append(index)
                continue
            if not executor.is_awaitable(completed):
                self.objects[index][entry.key] = completed
                done.append(index)
                continue
            # A shaped list's pending relations start now, as they would when awaited on the
            # normal path; anything else starts on the next turn.
            future = completed.start() if isinstance(completed, Pending) else asyncio.ensure_future(completed)
            self.completion.waiting += 1
            future.add_done_callback(partial(self._settle, entry, index, path))
        self._done(done)

    def _settle(self, entry: Related, index: int, path: Path, future: asyncio.Future[Any]) -> None:
        self.completion.step(self._settled, entry, index, path, future, held=True)

    def _settled(self, entry: Related, index: int, path: Path, future: asyncio.Future[Any]) -> None:
        error = None if future.cancelled() else future.exception()
        if isinstance(error, Exception):
            self.run.executor.handle_field_error(error, entry.type, entry.field_details, path)
        self.objects[index][entry.key] = None if error is not None or future.cancelled() else future.result()
        self._done([index])

    def _fail(self, entry: Related, errors: Iterable[tuple[int, Exception]]) -> None:
        # The relation is nullable: each row's field is null with its own located error.
        executor = self.run.executor
        for index, error in errors:
            executor.handle_field_error(error, entry.type, entry.field_details, self._field_path(entry, index))
            self.objects[index][entry.key] = None

    def _field_path(self, entry: Related, index: int) -> Path:
        return Path(self.at.path(index), entry.key, self.shape.parent.name)


def _outcome(future: asyncio.Future[Any]) -> Any:
    error = future.exception()
    return error if error is not None else future.result()


def _value(entry: Related, rows: Any) -> Any:
    return rows if entry.many else (rows[0] if rows else None)


class Pending:
    """A shaped list or object whose relations are still to load. Its job starts when it is
    first awaited, where the normal path's coroutines would start (or by `start`)."""

    def __init__(self, job: Job, groups: Groups) -> None:
        self.job = job
        self.groups: Groups | None = groups

    def start(self) -> asyncio.Future[Any]:
        if self.groups is not None:
            groups, self.groups = self.groups, None
            self.job.completion.step(self.job.begin, groups)
        return self.job.completion.future

    def __await__(self) -> Generator[Any, None, Any]:
        self.start()
        return self.job.completion.wait()


def pending(
    run: Run, shape: RowShaper, rows: list[dict[Any, Any]], objects: list[dict[str, Any]], at: Rows, position: Any
) -> Pending:
    """The relations of `rows` (shaped in `objects`) to complete, as one list or one object."""
    one = isinstance(at, OneRow)
    completion = Completion(objects[0] if one else objects)
    delay = (len(rows) > 1) + (len(shape.related) > 1)
    job = Job(run, completion, shape, rows, objects, at, [2 * delay] * len(rows), position)
    return Pending(job, [(delay, list(range(len(rows))))])
