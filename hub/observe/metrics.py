"""The hub's Prometheus series, in a registry the app owns (not prometheus_client's global one, so
several apps in one process, as in tests, keep their counts apart).

Every label has a bounded set of values: a registered document's id or `other` (never an
operation name or a principal: callers choose those, and each new one would be a new series),
outcomes and error codes from fixed lists, department and cache names from the configuration.

The request path counts in plain integers and lists, which `_Series.collect` turns into
Prometheus families when /metrics is scraped: prometheus_client's own counters take a lock and
its histograms search their buckets in Python on every observation, which cost W6's lookup by
key measurably (bench/w6_cpu.py). Everything runs on the app's one event loop, the scrape too,
so no count changes while it is read. Read when scraped from elsewhere: circuit states,
connection pools, cache hits (which the caches keep as plain integers) and the data-key
versions the instance holds (so an operator sees a rotation reach every instance before
re-encrypting under it).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from hub.health.breaker import Breaker, Circuit

# Seconds; a lookup by key takes about a millisecond, a 10,000-row list a tenth of a second.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# How a department read that got no answer ended (hub/health/guard.py).
READ_FAILURES = ("timeout", "unavailable", "circuit_open", "refused", "abandoned")
LIMITS = ("rate_caller", "rate_department", "concurrency", "lookup_quota")
LEVELS = ("plain", "masked", "withheld")
OTHER = "other"

# A cache's (hits, misses) so far.
CacheCounts = Callable[[], tuple[int, int]]
# A department's connection pool: (connections checked out, pool size), None where unknown.
PoolUsage = Callable[[], tuple[int, int] | None]
# The newest data-key version the instance holds, per department.
KeyVersions = Callable[[], Mapping[str, int]]


class Histogram:
    """Observations counted per bucket (the last is +Inf), and their sum."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        # A bucket counts the values at most its bound (`le`): the first bound not below.
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sum += seconds

    def exposed(self) -> list[tuple[str, float]]:
        """Cumulative counts by `le`, as Prometheus shows them."""
        total, out = 0, []
        for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), self.counts, strict=True):
            total += count
            out.append((bound, float(total)))
        return out


class DepartmentCounts:
    """One department's reads: answered ones timed, the others counted by reason."""

    __slots__ = ("failures", "seconds")

    def __init__(self) -> None:
        self.seconds = Histogram()
        self.failures = dict.fromkeys(READ_FAILURES, 0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # The process's CPU, memory and open files, read from /proc when scraped.
        ProcessCollector(registry=self.registry)
        # (document, outcome, code) -> requests; document -> latency.
        self.requests: dict[tuple[str, str, str], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.values = dict.fromkeys(LEVELS, 0)
        self.limits = dict.fromkeys(LIMITS, 0)
        self.departments: dict[str, DepartmentCounts] = {}
        self.breakers: Mapping[str, Breaker] = {}
        self.pools: dict[str, PoolUsage] = {}
        self.caches: dict[str, CacheCounts] = {}
        self.key_versions: KeyVersions = dict
        self.registry.register(_Series(self))

    def request(self, document: str, outcome: str, code: str, seconds: float) -> None:
        key = (document, outcome, code)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        latency = self.latency.get(document)
        if latency is None:
            latency = self.latency[document] = Histogram()
        latency.observe(seconds)

    def released(self, plain: int, masked: int, withheld: int) -> None:
        """Counts one answer's values by level."""
        values = self.values
        values["plain"] += plain
        values["masked"] += masked
        values["withheld"] += withheld

    def limit_refused(self, limit: str) -> None:
        self.limits[limit] += 1

    def department(self, name: str) -> DepartmentCounts:
        found = self.departments.get(name)
        if found is None:
            found = self.departments[name] = DepartmentCounts()
        return found

    def watch_breakers(self, breakers: Mapping[str, Breaker]) -> None:
        self.breakers = breakers

    def watch_pool(self, department: str, usage: PoolUsage) -> None:
        self.pools[department] = usage

    def watch_cache(self, name: str, counts: CacheCounts) -> None:
        self.caches[name] = counts

    def watch_keys(self, versions: KeyVersions) -> None:
        self.key_versions = versions

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """Every series, and its media type: the format `accept` asks for (OpenMetrics, or
        Prometheus text 1.0.0), else Prometheus text 0.0.4, which every scraper reads."""
        encoder, media_type = choose_encoder(accept or "")
        return encoder(self.registry), media_type


class _Series(Collector):
    """The hub's series, made from its counts when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        # Described as nothing: the registry then never calls collect() at registration.
        return []

    def collect(self) -> Iterable[Metric]:
        yield from self._requests()
        yield from self._departments()
        yield from self._caches()
        yield from self._keys()

    def _requests(self) -> Iterable[Metric]:
        m = self.metrics
        requests = CounterMetricFamily(
            "hub_requests",
            "GraphQL requests by registered document (or other), outcome (ok, partial, refused, error, "
            "cancelled) and the first error's code (none without errors)",
            labels=["document", "outcome", "code"],
        )
        for key, count in sorted(m.requests.items()):
            requests.add_metric(list(key), count)
        yield requests
        latency = HistogramMetricFamily(
            "hub_request_duration_seconds",
            "Time from a request's arrival to its answer being ready, by registered document (or other)",
            labels=["document"],
        )
        for document, histogram in sorted(m.latency.items()):
            latency.add_metric([document], histogram.exposed(), histogram.sum)
        yield latency
        values = CounterMetricFamily(
            "hub_access_values", "Values released by level: plain, masked, withheld", labels=["level"]
        )
        for level, count in m.values.items():
            values.add_metric([level], count)
        yield values
        limits = CounterMetricFamily(
            "hub_limit_refusals",
            "Requests refused by a limit: rate_caller, rate_department, concurrency, lookup_quota",
            labels=["limit"],
        )
        for limit, count in m.limits.items():
            limits.add_metric([limit], count)
        yield limits

    def _departments(self) -> Iterable[Metric]:
        m = self.metrics
        seconds = HistogramMetricFamily(
            "hub_department_statement_duration_seconds",
            "Department reads answered, by department (each read is one statement, or one per chunk of values)",
            labels=["department"],
        )
        failures = CounterMetricFamily(
            "hub_department_statement_errors",
            "Department reads that got no answer, by department and reason",
            labels=["department", "reason"],
        )
        for name, counts in sorted(m.departments.items()):
            seconds.add_metric([name], counts.seconds.exposed(), counts.seconds.sum)
            for reason, count in counts.failures.items():
                failures.add_metric([name, reason], count)
        yield seconds
        yield failures
        circuit = GaugeMetricFamily(
            "hub_department_circuit_state",
            "1 for the state each department's circuit breaker is in (closed, open, half_open)",
            labels=["department", "state"],
        )
        consecutive = GaugeMetricFamily(
            "hub_department_consecutive_failures",
            "Failed reads in a row counted towards opening the department's circuit",
            labels=["department"],
        )
        for name, breaker in sorted(m.breakers.items()):
            current = breaker.circuit
            for state in Circuit:
                circuit.add_metric([name, state.value], 1.0 if state is current else 0.0)
            consecutive.add_metric([name], breaker.failures)
        yield circuit
        yield consecutive
        checked_out = GaugeMetricFamily(
            "hub_department_pool_checked_out", "Connections in use in the department's pool", labels=["department"]
        )
        size = GaugeMetricFamily("hub_department_pool_size", "The department's pool size", labels=["department"])
        for name, usage in sorted(m.pools.items()):
            found = usage()
            if found is not None:
                checked_out.add_metric([name], found[0])
                size.add_metric([name], found[1])
        yield checked_out
        yield size

    def _caches(self) -> Iterable[Metric]:
        lookups = CounterMetricFamily(
            "hub_cache_lookups",
            "Cache lookups by cache (documents, trusted_documents, plans, decisions) and result (hit, miss)",
            labels=["cache", "result"],
        )
        for name, counts in sorted(self.metrics.caches.items()):
            hits, misses = counts()
            lookups.add_metric([name, "hit"], hits)
            lookups.add_metric([name, "miss"], misses)
        yield lookups

    def _keys(self) -> Iterable[Metric]:
        versions = GaugeMetricFamily(
            "hub_data_key_version",
            "The newest data-key version this instance holds, by department (a rotation raises it on every instance)",
            labels=["department"],
        )
        for department, version in sorted(self.metrics.key_versions().items()):
            versions.add_metric([department], version)
        yield versions


def pool_usage(engine: Any) -> PoolUsage | None:
    """The usage of a connector's SQLAlchemy pool (`engine` is its AsyncEngine), where the pool
    counts its connections (a queue pool does; SQLite in memory's static pool does not)."""
    pool = getattr(getattr(engine, "sync_engine", None), "pool", None)
    if pool is None or not callable(getattr(pool, "checkedout", None)) or not callable(getattr(pool, "size", None)):
        return None

    def usage() -> tuple[int, int]:
        return int(pool.checkedout()), int(pool.size())

    return usage
