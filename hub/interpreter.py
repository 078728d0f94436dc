"""The interpreter's switch interval for a serving hub (HUB_SWITCH_INTERVAL_MS).

The hub's event loop shares the interpreter (the GIL) with the threads of its drivers and
helpers: aiosqlite runs each SQLite connection on a thread of its own, and a read of 10,000 rows
builds its row tuples there, holding the GIL as it goes. A thread that wants the GIL waits for
the one holding it to give it up, which CPython asks of a busy thread only once the switch
interval has passed: 5 ms by default. Every hand-off of a lookup's read to a driver thread and
back, while another request's large read keeps a thread busy, could then wait up to that long,
several times per lookup. At 0.5 ms the busy thread lets the loop in ten times as often; a
request that runs alone loses almost nothing to the extra switches.

Applied by `hub serve` and `hub demo` only: it is a property of the whole process, which a
command that runs briefly, a test or a library user of the hub's packages has no reason to
change.
"""

from __future__ import annotations

import sys


def apply_switch_interval(milliseconds: float) -> float:
    """Sets the interpreter's switch interval to `milliseconds` (validated by `load_settings`);
    returns the previous one, in milliseconds."""
    previous = sys.getswitchinterval() * 1000
    sys.setswitchinterval(milliseconds / 1000)
    return previous
