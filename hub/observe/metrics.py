"""The hub's Prometheus series, in a registry the app owns (not prometheus_client's global one, so
several apps in one process, as in tests, keep their counts apart).

Every label has a bounded set of values: a registered document's id or `other` (never an
operation name or a principal: callers choose those, and each new one would be a new series),
outcomes and error codes from fixed lists, department and cache names from the configuration.

Counted on the request path: requests, their latency, values released by level, limit
refusals, department reads and their failures, each a prometheus_client child looked up once.
Read when scraped: circuit states, connection pools and cache hits, from counters the caches
keep as plain integers (no lock on their path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from hub.health.breaker import Breaker, Circuit

# Seconds; a lookup by key takes about a millisecond, a 10,000-row list a tenth of a second.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# How a department read that got no answer ended (hub/health/guard.py).
READ_FAILURES = ("timeout", "unavailable", "circuit_open", "refused", "abandoned")
LIMITS = ("rate_caller", "rate_department", "lookup_quota")
LEVELS = ("plain", "masked", "withheld")
OTHER = "other"

# A cache's (hits, misses) so far.
CacheCounts = Callable[[], tuple[int, int]]
# A department's connection pool: (connections checked out, pool size), None where unknown.
PoolUsage = Callable[[], tuple[int, int] | None]


class Metrics:
    def __init__(self) -> None:
        # No `_created` series beside each counter and histogram: they double the page and
        # Prometheus ignores them in its text format. (A switch of prometheus_client's for the
        # whole process; the hub has no other registry.)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        registry = self.registry
        # The process's CPU, memory and open files, read from /proc when scraped.
        ProcessCollector(registry=registry)
        self._requests = Counter(
            "hub_requests",
            "GraphQL requests by registered document (or other), outcome (ok, partial, refused, error) "
            "and the first error's code (none without errors)",
            ["document", "outcome", "code"],
            registry=registry,
        )
        self._latency = Histogram(
            "hub_request_duration_seconds",
            "Time from a request's arrival to its answer being ready, by registered document (or other)",
            ["document"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._values = Counter(
            "hub_access_values",
            "Values released by level: plain, masked, withheld",
            ["level"],
            registry=registry,
        )
        self._limits = Counter(
            "hub_limit_refusals",
            "Requests refused by a limit: rate_caller, rate_department, lookup_quota",
            ["limit"],
            registry=registry,
        )
        self.statement_seconds = Histogram(
            "hub_department_statement_duration_seconds",
            "Department reads answered, by department (each read is one statement, or one per chunk of values)",
            ["department"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.statement_failures = Counter(
            "hub_department_statement_errors",
            "Department reads that got no answer, by department and reason",
            ["department", "reason"],
            registry=registry,
        )
        self._scraped = _Scraped()
        registry.register(self._scraped)
        self._request_children: dict[tuple[str, str, str], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._plain, self._masked, self._withheld = (self._values.labels(level) for level in LEVELS)
        self._limit_children = {limit: self._limits.labels(limit) for limit in LIMITS}

    def request(self, document: str, outcome: str, code: str, seconds: float) -> None:
        key = (document, outcome, code)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self._requests.labels(*key)
        child.inc()
        latency = self._latency_children.get(document)
        if latency is None:
            latency = self._latency_children[document] = self._latency.labels(document)
        latency.observe(seconds)

    def released(self, plain: int, masked: int, withheld: int) -> None:
        """Counts one answer's values by level."""
        if plain:
            self._plain.inc(plain)
        if masked:
            self._masked.inc(masked)
        if withheld:
            self._withheld.inc(withheld)

    def limit_refused(self, limit: str) -> None:
        self._limit_children[limit].inc()

    def watch_breakers(self, breakers: Mapping[str, Breaker]) -> None:
        self._scraped.breakers = breakers

    def watch_pool(self, department: str, usage: PoolUsage) -> None:
        self._scraped.pools[department] = usage

    def watch_cache(self, name: str, counts: CacheCounts) -> None:
        self._scraped.caches[name] = counts

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """Every series, and its media type: the format `accept` asks for (OpenMetrics, or
        Prometheus text 1.0.0), else Prometheus text 0.0.4, which every scraper reads."""
        encoder, media_type = choose_encoder(accept or "")
        return encoder(self.registry), media_type


class _Scraped(Collector):
    """Series read from the hub's own state when /metrics is asked for."""

    def __init__(self) -> None:
        self.breakers: Mapping[str, Breaker] = {}
        self.pools: dict[str, PoolUsage] = {}
        self.caches: dict[str, CacheCounts] = {}

    def describe(self) -> Iterable[Metric]:
        # Described as nothing: the registry then never calls collect() at registration.
        return []

    def collect(self) -> Iterable[Metric]:
        circuit = GaugeMetricFamily(
            "hub_department_circuit_state",
            "1 for the state each department's circuit breaker is in (closed, open, half_open)",
            labels=["department", "state"],
        )
        failures = GaugeMetricFamily(
            "hub_department_consecutive_failures",
            "Failed reads in a row counted towards opening the department's circuit",
            labels=["department"],
        )
        for name, breaker in sorted(self.breakers.items()):
            current = breaker.circuit
            for state in Circuit:
                circuit.add_metric([name, state.value], 1.0 if state is current else 0.0)
            failures.add_metric([name], breaker.failures)
        yield circuit
        yield failures
        checked_out = GaugeMetricFamily(
            "hub_department_pool_checked_out", "Connections in use in the department's pool", labels=["department"]
        )
        size = GaugeMetricFamily("hub_department_pool_size", "The department's pool size", labels=["department"])
        for name, usage in sorted(self.pools.items()):
            found = usage()
            if found is not None:
                checked_out.add_metric([name], found[0])
                size.add_metric([name], found[1])
        yield checked_out
        yield size
        lookups = CounterMetricFamily(
            "hub_cache_lookups",
            "Cache lookups by cache (documents, trusted_documents, plans, decisions) and result (hit, miss)",
            labels=["cache", "result"],
        )
        for name, counts in sorted(self.caches.items()):
            hits, misses = counts()
            lookups.add_metric([name, "hit"], hits)
            lookups.add_metric([name, "miss"], misses)
        yield lookups


def pool_usage(engine: Any) -> PoolUsage | None:
    """The usage of a connector's SQLAlchemy pool (`engine` is its AsyncEngine), where the pool
    counts its connections (a queue pool does; SQLite in memory's static pool does not)."""
    pool = getattr(getattr(engine, "sync_engine", None), "pool", None)
    if pool is None or not callable(getattr(pool, "checkedout", None)) or not callable(getattr(pool, "size", None)):
        return None

    def usage() -> tuple[int, int]:
        return int(pool.checkedout()), int(pool.size())

    return usage
