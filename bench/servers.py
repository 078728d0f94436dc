"""Starting the contenders as uvicorn subprocesses on loopback, waiting until they are
ready, and stopping them whatever happens.

Each server is its own process (one uvicorn worker), so the benchmark's client never shares
an interpreter, a GIL or an event loop with the server it measures. Output goes to a log file
that is shown when a server fails to start.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class ServerError(RuntimeError):
    """A server did not start; the message carries the tail of its log."""


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


_HANDED: set[int] = set()


def free_port() -> int:
    """A port the kernel has just handed out on loopback, or the first free one of
    BENCH_PORTS (`first-last`) where a shared machine gives each user a range. Another process
    could take it before the server binds it; on a benchmark machine that race is not worth
    more code."""
    first, _, last = os.environ.get("BENCH_PORTS", "").partition("-")
    # A port of the range handed out before may not be bound yet by its server: not again.
    candidates = [p for p in range(int(first), int(last or first) + 1) if p not in _HANDED] if first else [0]
    for candidate in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((HOST, candidate))
            except OSError:
                continue
            port: int = probe.getsockname()[1]
            if first:
                _HANDED.add(port)
            return port
    raise ServerError(f"no free port in BENCH_PORTS={os.environ['BENCH_PORTS']}")


def start(
    name: str, command: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path, port: int | None = None
) -> Server:
    """Start `command` with `{port}` in it replaced by `port` (by default one the kernel picks)."""
    port = port or free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    handle = log.open("wb")
    try:
        # A session of its own: a Ctrl-C in the terminal reaches only this script, which then
        # stops the servers in order instead of racing them to shut down.
        process = subprocess.Popen(
            argv, cwd=cwd, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        handle.close()  # the child holds its own descriptor
    return Server(name, port, process, log)


def wait_ready(server: Server, path: str, timeout_s: float = START_TIMEOUT_S) -> None:
    """Poll `path` until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=5.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise ServerError(
                    f"{server.name} exited with code {server.process.returncode} before it was ready:\n"
                    f"{server.log_tail()}"
                )
            try:
                if client.get(path).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.1)
    raise ServerError(f"{server.name} was not ready within {timeout_s:.0f} s:\n{server.log_tail()}")


def stop(server: Server) -> None:
    """SIGTERM (uvicorn then runs the app's shutdown, closing its pools), SIGKILL if it hangs.
    Only the process this module started is signalled, by its id."""
    process = server.process
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
