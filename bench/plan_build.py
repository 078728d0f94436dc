"""How long building an access plan takes on a cache miss, with the demo policy.

The target (issue 3): under 20 ms. Run: `.venv/bin/python -m bench.plan_build`. Each sample
builds a fresh policy (so nothing is memoised) and plans one request; the cache-hit column is the
same request planned again.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from hub.access.plan import Planner, PolicySource, Selection
from hub.auth.principal import Principal
from hub.catalog import Catalog, load_catalog
from hub.policy.decisions import SnapshotPolicy
from hub.policy.snapshot import load_seed

MANIFESTS = Path(__file__).resolve().parents[1] / "hub" / "demo" / "manifests"
SAMPLES = 50


def selections(catalog: Catalog) -> dict[str, Selection]:
    deliveries = "civil_affairs.ServiceDelivery"
    return {
        "every entity and relation (15 entities)": Selection(
            {e.id: frozenset(e.fields) for e in catalog}, {e.id: frozenset(e.relations) for e in catalog}
        ),
        "one entity (W1's list)": Selection({deliveries: frozenset(catalog.entity(deliveries).fields)}, {}),
    }


def _source(policy: SnapshotPolicy) -> PolicySource:
    return lambda: policy


def measure(
    catalog: Catalog, principal: Principal, purpose: str | None, selection: Selection
) -> tuple[list[float], list[float]]:
    snapshot = load_seed().model_copy(update={"version": 1})
    misses: list[float] = []
    hits: list[float] = []
    for _ in range(SAMPLES):
        policy = SnapshotPolicy(snapshot, catalog)
        planner = Planner(catalog, _source(policy))
        start = time.perf_counter()
        planner.plan(principal, purpose, selection)
        misses.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        planner.plan(principal, purpose, selection)
        hits.append((time.perf_counter() - start) * 1000)
    return misses, hits


def main() -> None:
    catalog = load_catalog(MANIFESTS)
    principal = Principal("district-office-app", "civil_affairs", ("district_office",), {"district": "330102"})
    print(
        f"access plan build, demo policy, {SAMPLES} samples each, "
        f"caller {principal.subject} (purpose social_assistance)"
    )
    print(f"{'request':<42}{'miss median':>12}{'miss max':>10}{'hit median':>12}   target: miss < 20 ms")
    for name, selection in selections(catalog).items():
        misses, hits = measure(catalog, principal, "social_assistance", selection)
        print(f"{name:<42}{statistics.median(misses):>10.2f}ms{max(misses):>8.2f}ms{statistics.median(hits):>10.3f}ms")


if __name__ == "__main__":
    main()
