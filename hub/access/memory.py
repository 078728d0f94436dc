"""Giving memory back to the system after a large request.

A request of a million values leaves its objects freed but its memory held: CPython returns
small-object arenas only when they are wholly empty, and glibc's allocator keeps freed heap
pages for reuse. Collecting cycles and asking glibc to trim its heap (`malloc_trim(0)`) after
such a request gave back about 20 MB of the 135 MB the hub still held 30 s after the heaviest
requests the bounds allow (bench/heavy_request.py on the demo, bench/README.md); the rest is
held in pymalloc's arenas, each kept by a few objects that outlive the request, which neither
call reaches (measured in bench/README.md, "Half the pool per request"). Small requests skip
it: a trim costs milliseconds. It runs once the answer's last slice is sent
(hub/large_answer.py), when nothing of the request is referenced any more.

The collection runs in the event loop (it needs the interpreter whatever thread it runs in);
the trim runs in a thread of its own, started for it and ended with it (not a pool's: the
first use of Starlette's would import anyio into the memory just freed), since glibc walks its
free pages with the interpreter's lock released: the loop serves other requests meanwhile. One
trim at a time: a large answer sent while one runs has its pages returned by that one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Callable

# Values (rows times fields) from which a request's memory is worth giving back.
LARGE_REQUEST_VALUES = 100_000


def _trim() -> Callable[[], object] | None:
    # glibc only; elsewhere (musl, macOS) the allocator has no such call and nothing is done.
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


_MALLOC_TRIM = _trim()
# Held while a trim runs.
_trimming = threading.Lock()


def give_back() -> threading.Thread | None:
    """Collects the cycles a large request left and returns free heap pages to the system in a
    thread; that thread (None where no trim was started)."""
    gc.collect()
    if _MALLOC_TRIM is None or not _trimming.acquire(blocking=False):
        return None
    trim = _MALLOC_TRIM

    def run() -> None:
        try:
            trim()
        finally:
            _trimming.release()

    thread = threading.Thread(target=run, name="hub malloc_trim", daemon=True)
    thread.start()
    return thread
