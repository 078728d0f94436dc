"""The per-request context resolvers read: the caller, the services, the plan and the record."""

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader

from hub.authz.admin import PolicyAdmin
from hub.authz.plan import AccessPlan, Planner
from hub.authz.record import AccessRecord
from hub.principal import Principal
from hub.reader import Reader, Request
from schema.documents import Compiled


@dataclass
class Withheld:
    path: tuple[str | int, ...]
    reason: str
    count: int


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
    request: Request | None = None
    # The request's document, compiled: set by the app for a trusted document, else on parsing.
    document: Compiled | None = None
    loaders: dict[Hashable, DataLoader[Any, Any]] = field(default_factory=dict)
    # One entry per (list path, field): the release step withheld it for `count` rows.
    withheld: dict[tuple[str | int, ...], Withheld] = field(default_factory=dict)
    # One entry per (list path, field): values that failed to decrypt, and how many.
    unreadable: dict[tuple[str | int, ...], int] = field(default_factory=dict)
    # One entry per list (or single-row field): rows left out for a key that is null or did
    # not pass its integrity check, and how many.
    left_out: dict[tuple[str | int, ...], int] = field(default_factory=dict)
    # Paths (list indices as `*`) released masked.
    masked: set[tuple[str | int, ...]] = field(default_factory=set)

    @property
    def current(self) -> Request:
        """The request's plan and record; made by AccessPlanning before execution starts."""
        assert self.request is not None, "the access plan is made before execution starts"
        return self.request

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

    def withhold(self, path: tuple[str | int, ...], reason: str, count: int) -> None:
        entry = self.withheld.get(path)
        if entry is None:
            self.withheld[path] = Withheld(path, reason, count)
        else:
            entry.count += count
