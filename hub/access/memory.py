"""Giving memory back to the system after a large request.

A request of a million values leaves its objects freed but its memory held: CPython returns
small-object arenas only when they are wholly empty, and glibc's allocator keeps freed heap
pages for reuse. Collecting cycles and asking glibc to trim its heap (`malloc_trim(0)`) after
such a request gave back about 20 MB of the 135 MB the hub still held 30 s after the heaviest
requests the bounds allow (bench/heavy_request.py on the demo, bench/README.md); the rest is
held elsewhere. Small requests skip it: a trim costs milliseconds. It runs once the answer's last
slice is sent (hub/large_answer.py), when nothing of the request is referenced any more.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
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


def give_back() -> None:
    """Collects the cycles a large request left and returns free heap pages to the system."""
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM()
