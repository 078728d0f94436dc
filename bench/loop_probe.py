"""What holds the hub's event loop: every callback timed, in wall time and in the loop thread's
CPU time (issue 13's fairness).

Runs `hub demo` in this process with asyncio's `Handle._run` wrapped: each callback the loop
runs (a task's step, a transport's read, a timer) is timed by `time.perf_counter` and by
`time.thread_time`, the CPU the loop's own thread spent. A callback whose wall time is far above
its CPU time was waiting: for a CPU (a loaded machine), or for the GIL held by another thread of
the hub (aiosqlite's workers building rows). One whose CPU time is high is the hub's own
synchronous work, which pacing (connectors/pacing.py) is meant to cut. On SIGTERM or Ctrl-C the
hub stops and the probe writes `--out` (JSON): the count and the wall and CPU percentiles of
every callback, the slowest 40 by wall and by CPU with what they ran, and the gaps between two
callbacks (the loop waiting in `select`, or for the GIL on return).

    .venv/bin/python -m bench.loop_probe --data-dir DIR --port N --out FILE

Measure with `python -m bench.fairness --base-url http://127.0.0.1:N --tokens DIR/demo-tokens.json`
against it. The wrapping costs about a microsecond per callback.
"""

from __future__ import annotations

import argparse
import asyncio.events
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Callbacks slower than this (wall or CPU) are kept with what they ran; the rest only counted.
KEEP_S = 0.005


class Probe:
    def __init__(self) -> None:
        # When the running callback began (0.0 between callbacks), for the sampler.
        self.began = 0.0
        self.loop_thread = threading.get_ident()
        self.samples: Counter[str] = Counter()
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self.slow: list[tuple[float, float, str]] = []
        self.last_end = 0.0
        self.gaps: list[float] = []

    def install(self) -> None:
        run = asyncio.events.Handle._run
        probe = self

        def timed(handle: asyncio.events.Handle) -> None:
            wall, cpu = time.perf_counter(), time.thread_time()
            probe.began = wall
            if probe.last_end:
                probe.gaps.append(wall - probe.last_end)
            try:
                run(handle)
            finally:
                end = time.perf_counter()
                probe.began = 0.0
                spent_wall, spent_cpu = end - wall, time.thread_time() - cpu
                probe.last_end = end
                probe.walls.append(spent_wall)
                probe.cpus.append(spent_cpu)
                if spent_wall >= KEEP_S or spent_cpu >= KEEP_S:
                    probe.slow.append((spent_wall, spent_cpu, _what(handle)))

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]

    def sample(self, every_s: float) -> None:
        """Samples, from a thread of its own, where the loop thread is in every callback that
        has run longer than KEEP_S: the stacks that hold the loop, weighted by time."""

        def run() -> None:
            while True:
                time.sleep(every_s)
                began = self.began
                if began and time.perf_counter() - began >= KEEP_S:
                    frame = sys._current_frames().get(self.loop_thread)
                    if frame is not None:
                        self.samples[_stack(frame)] += 1

        threading.Thread(target=run, name="loop probe sampler", daemon=True).start()

    def report(self) -> dict[str, Any]:
        def percentiles(values: list[float]) -> dict[str, float]:
            ordered = sorted(values)
            if not ordered:
                return {}
            at = lambda p: ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]  # noqa: E731
            return {f"p{p}": round(at(p) * 1000, 3) for p in (50, 99, 99.9)} | {"max": round(ordered[-1] * 1000, 3)}

        return {
            "callbacks": len(self.walls),
            "wall_ms": percentiles(self.walls),
            "cpu_ms": percentiles(self.cpus),
            "gap_ms": percentiles(self.gaps),
            "over_5ms_wall": sum(w >= KEEP_S for w in self.walls),
            "over_5ms_cpu": sum(c >= KEEP_S for c in self.cpus),
            "over_20ms_wall": sum(w >= 0.02 for w in self.walls),
            "over_20ms_cpu": sum(c >= 0.02 for c in self.cpus),
            "cpu_total_s": round(sum(self.cpus), 3),
            "slowest_wall": [_row(s) for s in sorted(self.slow, key=lambda s: -s[0])[:40]],
            "slowest_cpu": [_row(s) for s in sorted(self.slow, key=lambda s: -s[1])[:40]],
            "long_callback_samples": self.samples.most_common(60),
        }


def _stack(frame: Any) -> str:
    """The innermost frames of the hub's own code and the libraries under it, innermost first."""
    parts = []
    while frame is not None and len(parts) < 8:
        name = frame.f_code.co_filename
        if "asyncio" in name:
            break
        parts.append(f"{name.rsplit('/', 2)[-2]}/{name.rsplit('/', 1)[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
    return " < ".join(parts)


def _row(slow: tuple[float, float, str]) -> dict[str, Any]:
    return {"wall_ms": round(slow[0] * 1000, 2), "cpu_ms": round(slow[1] * 1000, 2), "what": slow[2]}


def _what(handle: asyncio.events.Handle) -> str:
    callback = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = "" if frame is None else f" at {frame.f_code.co_filename.rsplit('/', 3)[-1]}:{frame.f_lineno}"
        return f"task {getattr(coro, '__qualname__', coro)}{where}"
    return repr(callback)[:160]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loop_probe", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sample", type=float, help="sample long callbacks' stacks every this many seconds")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval for the hub, in seconds")
    args = parser.parse_args(argv)
    if args.switch_interval is not None:
        # `hub demo` sets the interval from its settings (hub/interpreter.py).
        os.environ["HUB_SWITCH_INTERVAL_MS"] = repr(args.switch_interval * 1000)
    probe = Probe()
    probe.install()
    if args.sample is not None:
        probe.sample(args.sample)
    # uvicorn raises SIGTERM again once it has shut down: here that ends `hub` normally, and
    # the report is written.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from hub.cli.main import main as hub

    try:
        hub(["demo", "--data-dir", str(args.data_dir), "--port", str(args.port)], standalone_mode=False)
    finally:
        args.out.write_text(json.dumps(probe.report(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
