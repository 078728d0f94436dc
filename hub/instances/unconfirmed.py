"""The policy an instance applies while it cannot confirm it holds every change: the live
policy, with every L3 and L4 field withheld.

A revocation another instance made may be exactly what this one missed, so the data whose
release a revocation exists to stop is not released on a guess; L1 and L2 fields, row rules and
relations follow the live policy. The version carries a suffix, so a plan made this way is
cached apart and the answer's `extensions.access.policyVersion` tells the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from hub.access.plan import AccessPolicy, Decision, Verdict
from hub.access.semijoin import RowScope
from hub.access.suppression import DEFAULT_MIN_GROUP
from hub.auth.principal import Principal
from hub.catalog import EntityInfo, FieldInfo, RelationInfo
from hub.catalog.manifest import Tier

WITHHELD_TIERS = frozenset({Tier.L3, Tier.L4})
SUFFIX = "-unconfirmed"
REASON = "this hub instance cannot confirm it holds the current policy; L3 and L4 fields are withheld until it can"


class Withholding:
    """`inner` with L3 and L4 fields denied."""

    def __init__(self, inner: AccessPolicy) -> None:
        self.inner = inner
        self.version = inner.version + SUFFIX

    def field(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> Verdict:
        if item.tier in WITHHELD_TIERS:
            return Verdict(Decision.DENIED, REASON)
        return self.inner.field(principal, purpose, entity, item)

    def relation(self, principal: Principal, purpose: str | None, relation: RelationInfo) -> Verdict:
        return self.inner.relation(principal, purpose, relation)

    def row_rule(self, principal: Principal, purpose: str | None, entity: EntityInfo) -> RowScope:
        return self.inner.row_rule(principal, purpose, entity)

    def attributes_used(self, principal: Principal) -> tuple[tuple[str, str], ...]:
        return self.inner.attributes_used(principal)

    def next_change(self, after: datetime) -> datetime | None:
        return self.inner.next_change(after)

    def min_group(self, principal: Principal, purpose: str | None, department: str | None = None) -> int:
        inner = getattr(self.inner, "min_group", None)
        return DEFAULT_MIN_GROUP if inner is None else int(inner(principal, purpose, department))


class ConfirmedSource:
    """The planner's policy source: the live policy while `confirmed()`, else it withheld.
    One wrapper per live policy object, so the planner's caches keep working while unconfirmed."""

    def __init__(self, live: Callable[[], AccessPolicy], confirmed: Callable[[], bool]) -> None:
        self._live = live
        self._confirmed = confirmed
        self._withholding: Withholding | None = None

    def __call__(self) -> AccessPolicy:
        policy = self._live()
        if self._confirmed():
            return policy
        withholding = self._withholding
        if withholding is None or withholding.inner is not policy:
            withholding = self._withholding = Withholding(policy)
        return withholding
