"""The per-request context resolvers read: the caller, the services, the plan and the record."""

import asyncio
from bisect import insort
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from hub.access.plan import AccessPlan, Planner
from hub.access.read import Reader, RequestAccess
from hub.access.record import AccessRecord
from hub.accountability.bound import ReportRows
from hub.audit.history import PersonHistory
from hub.audit.query import AuditQuery
from hub.auth.principal import Principal
from hub.errors import HubError, Internal
from hub.lineage.recording import Lineage
from hub.policy.admin import PolicyAdmin
from hub.reload import ReloadReport
from schema.compiled import Compiled

T = TypeVar("T")


def available(service: T | None, missing: str) -> T:
    """`service`, one of the context's optional services; a hub built without it (a fixed
    policy, no access trail, no lineage) answers INTERNAL with `missing`, never a stack trace."""
    if service is None:
        raise Internal(missing)
    return service


@dataclass
class Withheld:
    path: tuple[str | int, ...]
    reason: str
    count: int


@dataclass
class FailedRelation:
    """A relation's load failed for `count` rows of one list (its department unavailable, most
    often): their fields are null, with one error between them, the error the load returned
    for every row."""

    error: HubError
    count: int


# Truncated lists named in a response; the rest are counted. A request may cut a list under each
# of thousands of parents, and the response must not grow with them.
LISTED_TRUNCATIONS = 100


class Truncated:
    """Lists cut at their bound: the first LISTED_TRUNCATIONS paths in path order (the same
    whichever order lists completed in) and how many lists were cut in all."""

    __slots__ = ("count", "paths")

    def __init__(self) -> None:
        self.paths: list[tuple[str | int, ...]] = []
        self.count = 0

    def add(self, path: tuple[str | int, ...]) -> None:
        # Two paths first differ below one parent, both as list indices or both as response
        # keys, so tuples of mixed keys still compare.
        self.count += 1
        paths = self.paths
        if len(paths) < LISTED_TRUNCATIONS:
            insort(paths, path)
        elif path < paths[-1]:
            insort(paths, path)
            paths.pop()


@dataclass
class RequestContext:
    principal: Principal
    purpose: str | None
    reader: Reader
    planner: Planner
    # Type name -> entity id, for the generated entity types; filled by the schema builder.
    entity_types: dict[str, str]
    # Root field name -> entity id of the list and by-key fields.
    root_fields: dict[str, str]
    # Policy administration; None on a hub with a fixed policy (tests of the spine).
    admin: PolicyAdmin | None = None
    # Reading the access trail; None on a hub built without it.
    audit: AuditQuery | None = None
    history: PersonHistory | None = None
    # Reads the manifests again and swaps to them (hub/reload.py); None where nothing can.
    reload: Callable[[], Awaitable[ReloadReport]] | None = None
    lineage: Lineage | None = None
    request: RequestAccess | None = None
    # The request's document, compiled: set by the app for a trusted document, else on parsing.
    document: Compiled | None = None
    loaders: dict[Hashable, DataLoader[Any, Any]] = field(default_factory=dict)
    # One entry per (list path, field): the release step withheld it for `count` rows.
    withheld: dict[tuple[str | int, ...], Withheld] = field(default_factory=dict)
    # One entry per (list path, relation): rows whose relation failed to load, and the error.
    failed_relations: dict[tuple[str | int, ...], FailedRelation] = field(default_factory=dict)
    # One entry per (list path, field): values that failed to decrypt, and how many.
    unreadable: dict[tuple[str | int, ...], int] = field(default_factory=dict)
    # One entry per list (or single-row field): rows left out for a key that is null or did
    # not pass its integrity check, and how many.
    left_out: dict[tuple[str | int, ...], int] = field(default_factory=dict)
    # Paths (list indices as `*`) released masked.
    masked: set[tuple[str | int, ...]] = field(default_factory=set)
    # Relation lists cut at their bound, by their full paths (list indices and response keys).
    truncated: Truncated = field(default_factory=Truncated)
    # Aggregates: the fields aggregated (`department.Entity.field`) and the groups suppressed.
    aggregated: set[str] = field(default_factory=set)
    suppressed_groups: int = 0
    # The accountability reports' per-key rows, one count for every report field of the
    # request (made by the first report it runs).
    report_rows: ReportRows | None = None
    # Work the executor left running after an error nulled its parent (graphql-core's
    # background futures): the answer waits for it, so its reports always land.
    background: set[asyncio.Future[Any]] = field(default_factory=set)
    # What holds the request's objects in reference cycles while it runs, undone by `release`.
    releases: list[Callable[[], None]] = field(default_factory=list)

    @property
    def current(self) -> RequestAccess:
        """The request's plan and record; made by AccessPlanning before execution starts."""
        assert self.request is not None, "the access plan is made before execution starts"
        return self.request

    def access(self, plan: AccessPlan) -> RequestAccess:
        """A read under `plan`, planned apart from the request's (the reports' entities), that
        records into the request's access record and spends its value budget."""
        current = self.current
        return RequestAccess(plan, current.record, current.budget)

    def count_aggregated(self, fields: Iterable[str], suppressed: int) -> None:
        """Notes the fields an aggregate read and the groups it suppressed, for the answer's
        access extension."""
        self.aggregated.update(fields)
        self.suppressed_groups += suppressed

    @property
    def plan(self) -> AccessPlan:
        return self.current.plan

    @property
    def record(self) -> AccessRecord:
        return self.current.record

    def loader(self, key: Hashable, make: Callable[[], DataLoader[Any, Any]]) -> DataLoader[Any, Any]:
        found = self.loaders.get(key)
        if found is None:
            found = self.loaders[key] = make()
        return found

    def release(self) -> None:
        """Lets the request's objects go once its answer is made. Its loaders' load functions
        close over this context, and its executor's run of relations holds the executor, which
        holds the context: reference cycles that left every request with a relation to the
        cyclic collector (with them broken, its share of the hub's CPU under bench.load fell
        from 11-15% to 6-10%: bench/README.md, "Load"). Broken here, the request's objects are
        freed as soon as the answer lets go of them."""
        self.loaders.clear()
        releases, self.releases = self.releases, []
        for release in releases:
            release()

    async def settled(self) -> None:
        """Waits until the work the executor left running has ended."""
        background = self.background
        while background:
            await asyncio.wait(list(background))

    def withhold(self, path: tuple[str | int, ...], reason: str, count: int) -> None:
        entry = self.withheld.get(path)
        if entry is None:
            self.withheld[path] = Withheld(path, reason, count)
        else:
            entry.count += count

    def fail_relation(self, path: tuple[str | int, ...], error: HubError, count: int) -> None:
        """`count` rows of the list at `path` (indices as `*`) lost a relation to `error` (its
        department's outage, most often): one error for the list, with the count, as for a
        withheld field, rather than one per row (a 10,000-row list would carry 10,000 copies).
        A second error for the same path (another batch of the list) adds to the first's count."""
        entry = self.failed_relations.get(path)
        if entry is None:
            self.failed_relations[path] = FailedRelation(error, count)
        else:
            entry.count += count
