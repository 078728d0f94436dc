"""Workload W2: 50 civil affairs service deliveries with the finance expenditure that paid for
each (a relation into another department), sent open loop at fixed rates; its pages, its
contenders (the hub, and a ready-made body that checks the generator) and the check that the
relation really runs."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from bench.measure import client
from bench.open_loop import OpenLoopJob, OpenLoopRun, run_open_loop
from bench.servers import HOST, Server
from bench.w1 import FIELDS, PURPOSE, Mismatch

ROWS = 50
FIELD = "civilAffairsServiceDeliveries"
RELATION = "expenditure"
EXPENDITURE_FIELDS = "expenditureId budgetLineId department payee amount paidAt purpose"
# An auditor's page: one district's deliveries with the expenditures that funded them. The
# district filter is an equality on an indexed column, so PostgreSQL reads one district's rows
# rather than sorting the whole table for every page (the hub orders by the key's code points,
# which no index of the demo tables serves).
QUERY = (
    f"query DeliveriesWithExpenditure($district: String!, $offset: Int!) {{ "
    f"{FIELD}(first: {ROWS}, offset: $offset, filter: {{districtCode: {{eq: $district}}}}, "
    f"orderBy: [DELIVERY_ID_ASC]) {{ nodes {{ {FIELDS} {RELATION} {{ {EXPENDITURE_FIELDS} }} }} }} }}"
)
# Three pages per district: the first, one from the middle and one from the end of the
# smallest district (1,085 rows in the demo data).
OFFSETS = (0, 500, 1000)
# "Most rows": the verification fails if fewer carry their expenditure (in the demo data
# every delivery has one).
MIN_RELATED_SHARE = 0.9
# Open requests at most: at 200 req/s even 300 ms answers leave connections to spare.
CONNECTIONS = 64
# A run starts once the hub takes under 5% of a core over half a second (its policy poll and
# idle loop take well under that), waiting at most a minute.
QUIET_SHARE = 0.05
QUIET_WINDOW_S = 0.5
QUIET_TIMEOUT_S = 60.0
HUB_NAME = "hub"
CHECK_NAME = "generator check"


@dataclass(frozen=True)
class Page:
    district: str
    offset: int

    def body(self) -> str:
        return orjson.dumps({"query": QUERY, "variables": {"district": self.district, "offset": self.offset}}).decode()


async def pages(url: URL) -> list[Page]:
    """Every district with at least the last offset's page of rows, by three offsets: the same
    pages every run on the same data."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            statement = sa.text(
                "SELECT district_code, count(*) FROM ca_service_delivery GROUP BY district_code "
                'ORDER BY district_code COLLATE "C"'
            )
            counts = (await connection.execute(statement)).all()
    finally:
        await engine.dispose()
    found = [Page(str(d), o) for d, n in counts if n >= OFFSETS[-1] + ROWS for o in OFFSETS]
    if not found:
        raise Mismatch("no district of the bench database has enough service deliveries for W2's pages")
    return found


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Hub-Purpose": PURPOSE, "Content-Type": "application/json"}


def verify(hub_url: str, token: str, page_list: Sequence[Page]) -> dict[str, Any]:
    """Fetch every page once and require, for each: HTTP 200, no errors, 50 nodes of its
    district, at least MIN_RELATED_SHARE of them with their expenditure (whose id is the
    delivery's expenditureId), and pages that differ. Returns what was found: rows and related
    rows per page, the body sizes and the top-level members of the hub's body."""
    seen: set[tuple[str, ...]] = set()
    related: list[int] = []
    sizes: list[int] = []
    members: list[str] = []
    with client() as http:
        for page in page_list:
            response = http.post(f"{hub_url}/graphql", headers=headers(token), content=page.body())
            if response.status_code != 200:
                raise Mismatch(f"the hub answered HTTP {response.status_code} for {page}:\n{response.text[:2000]}")
            body = orjson.loads(response.content)
            if body.get("errors"):
                errors = orjson.dumps(body["errors"][:5], option=orjson.OPT_INDENT_2).decode()
                raise Mismatch(f"the hub answered {page} with errors:\n{errors}")
            nodes = body["data"][FIELD]["nodes"]
            if len(nodes) != ROWS or any(n["districtCode"] != page.district for n in nodes):
                raise Mismatch(
                    f"the hub sent {len(nodes)} nodes for {page}, expected {ROWS} of district {page.district}"
                )
            joined = [n for n in nodes if n[RELATION] is not None]
            wrong = [n["deliveryId"] for n in joined if n[RELATION]["expenditureId"] != n["expenditureId"]]
            if wrong:
                raise Mismatch(f"deliveries {wrong[:5]} came with another expenditure than their expenditureId")
            if len(joined) < MIN_RELATED_SHARE * ROWS:
                raise Mismatch(
                    f"only {len(joined)} of {ROWS} deliveries of {page} came with their {RELATION}: the "
                    "relation would not be measured"
                )
            seen.add(tuple(n["deliveryId"] for n in nodes))
            related.append(len(joined))
            sizes.append(len(response.content))
            members = sorted(body)
    if len(seen) != len(page_list):
        raise Mismatch(f"{len(page_list)} pages brought only {len(seen)} different sets of deliveries")
    # The generator check answers a body of the hub's median size.
    return {
        "related_per_page": related,
        "body_bytes": sizes,
        "check_bytes": int(statistics.median(sizes)),
        "body_members": members,
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) process `pid` has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    # After the command name: state is field 3, utime and stime fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_quiet(server: Server, say: Callable[[str], None]) -> None:
    """Return once `server` uses less than QUIET_SHARE of a core over QUIET_WINDOW_S, or after
    QUIET_TIMEOUT_S all the same."""
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    while time.monotonic() < deadline:
        before = cpu_seconds(server.process.pid)
        time.sleep(QUIET_WINDOW_S)
        if cpu_seconds(server.process.pid) - before < QUIET_SHARE * QUIET_WINDOW_S:
            return
    say(f"W2: the {server.name} did not fall quiet within {QUIET_TIMEOUT_S:.0f} s; running all the same")


def run_jobs(hub: Server, job_list: Sequence[OpenLoopJob], cwd: Path, say: Callable[[str], None]) -> list[OpenLoopRun]:
    """Run each job in a generator process of its own, each on a quiet hub: a hub that fell
    behind keeps working off abandoned requests after its run and would take the CPU from the
    next one."""
    runs = []
    for job in job_list:
        wait_quiet(hub, say)
        runs.append(run_open_loop(job, cwd))
    return runs


def jobs(
    hub_port: int,
    check_port: int,
    token: str,
    page_list: Sequence[Page],
    rate: float,
    warmup_s: float,
    duration_s: float,
    check_bytes: int,
) -> list[OpenLoopJob]:
    """The hub's job at `rate`, and the generator check's: the same requests (method, headers,
    bodies, rotation) to a route that answers a ready-made body of the hub's size."""
    requests = [("/graphql", p.body()) for p in page_list]
    check_requests = [(f"/static?bytes={check_bytes}", body) for _, body in requests]
    return [
        OpenLoopJob(name, HOST, port, "POST", sent, rate, warmup_s, duration_s, headers(token), CONNECTIONS)
        for name, port, sent in ((HUB_NAME, hub_port, requests), (CHECK_NAME, check_port, check_requests))
    ]
