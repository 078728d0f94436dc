"""Onboarding: the README's steps ("Serve a department database of your own") run literally on
a fresh SQLite housing department, from the first command to the app's first answer, with the
one edit the draft asks for here (its encrypted column, whose keys this hub lacks, left out).
Prints the wall time, the CPU time of the commands, the number of commands and edits in the
README, and the load average. The target (issue 17): under 2 minutes, at most 5 commands and
3 manual edits.

    .venv/bin/python -m bench.onboarding
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.housing_department import housing_database

README = Path(__file__).resolve().parent.parent / "README.md"
PORT = 18861


def readme_block() -> list[str]:
    section = README.read_text(encoding="utf-8").split("## Serve a department database of your own", 1)[1]
    found = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    if found is None:
        raise SystemExit("the README's onboarding block is missing")
    return found.group(1).splitlines()


def main() -> None:
    block = readme_block()
    commands = [line.split("  #")[0].strip() for line in block if not line.lstrip().startswith("#")]
    edits = [line for line in block if line.lstrip().startswith("#") and "edit" in line]
    folder = Path(tempfile.mkdtemp(prefix="onboarding-"))
    url = housing_database("sqlite", folder)
    serve = commands[-1]
    script = "\n".join(["set -e", *commands[:-1]]).replace("sqlite+aiosqlite:////srv/housing.db", url)
    script = script.replace(
        "hub manifest check", "sed -i '/holder_id_number/d' manifests/housing.yaml\nhub manifest check", 1
    )
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOUSING_URL": url}
    bash = shutil.which("bash") or "/bin/bash"
    start = time.perf_counter()
    done = subprocess.run([bash, "-c", script], cwd=folder, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the steps failed:\n{done.stderr}")
    token = re.search(r"^(hub_\S+)$", done.stdout, flags=re.MULTILINE)
    if token is None:
        raise SystemExit("no token printed")
    server = subprocess.Popen(
        [*serve.split(), "--port", str(PORT)],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    query = {"query": "{ housingTenants(first: 1) { nodes { tenantId leases { monthlyRent } } } }"}
    try:
        while True:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{PORT}/graphql",
                    json=query,
                    headers={"Authorization": f"Bearer {token.group(1)}"},
                    timeout=5,
                ).json()
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    raise SystemExit("the hub stopped") from None
                time.sleep(0.1)
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=30)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if "errors" in answer:
        raise SystemExit(f"the first answer has errors: {answer['errors']}")
    print(f"commands in the README: {len(commands)} (target at most 5); manual edits: {len(edits)} (at most 3)")
    cpu = children.ru_utime + children.ru_stime
    print(f"first answer after {wall:.1f} s wall (target under 120 s); commands' CPU {cpu:.1f} s")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
