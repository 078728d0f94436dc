"""What the numbers were measured on: a ratio travels between machines, milliseconds do not."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

# The folders whose code a W1 run exercises (bench/ itself is left out: it measures, it is not
# measured).
CODE = ("hub", "schema", "connectors", "migrations", "policies", "pyproject.toml")
PACKAGES = ("strawberry-graphql", "graphql-core", "starlette", "uvicorn", "sqlalchemy", "asyncpg", "orjson", "httpx")
# W1's third contender, PostGraphile 4: a Node.js package installed in this folder.
POSTGRAPHILE = Path(__file__).resolve().parent / "postgraphile"


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    usable_cores: int
    kernel: str
    python: str
    postgresql: str
    packages: dict[str, str]
    node: str = "unknown"
    postgraphile: str = "unknown"  # the version installed in bench/postgraphile

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "not installed"
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def postgraphile_version() -> str:
    """The PostGraphile installed in bench/postgraphile/node_modules: what runs, whatever the
    lock file says."""
    try:
        manifest = json.loads((POSTGRAPHILE / "node_modules" / "postgraphile" / "package.json").read_bytes())
    except (OSError, ValueError):
        return "not installed"
    return str(manifest.get("version", "unknown"))


async def postgresql_version(url: URL) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return str(await connection.scalar(sa.text("SHOW server_version")))
    finally:
        await engine.dispose()


async def describe(url: URL) -> Machine:
    return Machine(
        cpu=cpu_model(),
        cores=os.cpu_count() or 0,
        # The cores this process may run on (a container or taskset may allow fewer).
        usable_cores=len(os.sched_getaffinity(0)),
        kernel=f"{platform.system()} {platform.release()}",
        python=f"{platform.python_implementation()} {platform.python_version()}",
        postgresql=await postgresql_version(url),
        packages={p: _version(p) for p in PACKAGES},
        node=node_version(),
        postgraphile=postgraphile_version(),
    )


def revision(repo: Path) -> str:
    """The hub's commit, with "+uncommitted" when its code differs from it: numbers taken on
    a working tree in flux must say so."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", *CODE], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head}+uncommitted" if changed else head
