"""A large answer sent a slice at a time, and its memory given back once it is sent.

The body of the heaviest answer the bounds allow is about 26 MB. Sent as one bytes object, its
copy into the transport held the event loop for ~20 ms (other callers' lookups waited behind
it), and the request's memory could be given back only after Starlette had let go of the
response. Here the body comes as slices of about a MiB (hub/encoding.py), each handed to the
server in its own `send` and dropped by the response once handed over, so the server's flow
control (it waits for the socket to drain past its high-water mark) gives other requests turns
between slices. When the last slice is sent, or the client has gone, or the request is
cancelled, nothing of the answer is left in the response and its memory is given back
(hub/access/memory.py: a collection in the event loop, the heap's trim in a thread of its own;
not in Starlette's thread pool, whose first use would import anyio and keep its objects in the
very memory the request has just freed).
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hub.access.memory import give_back


class LargeJSON(Response):
    """A JSON answer already encoded as slices, sent one slice per `send`."""

    media_type = "application/json"

    def __init__(self, slices: list[bytes], status_code: int, code: str | None) -> None:
        # Starlette's constructor would render a body: here there is none to render, only slices.
        self.status_code = status_code
        self.background = None
        # The first error's code, for the metrics and the access log (as hub/app.py's JSON).
        self.code = code
        self.slices = slices
        self.body = b""
        length = sum(len(piece) for piece in slices)
        self.raw_headers = [
            (b"content-length", str(length).encode("latin-1")),
            (b"content-type", self.media_type.encode("latin-1")),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        slices, self.slices = self.slices, []
        # The server says when the client has gone; no slice is made to wait for nobody.
        gone = asyncio.ensure_future(_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            last = len(slices) - 1
            for at in range(len(slices)):
                if gone.done():
                    break
                piece, slices[at] = slices[at], b""
                await send({"type": "http.response.body", "body": piece, "more_body": at < last})
                del piece
        finally:
            gone.cancel()
            del slices
            # Once this step of the request's task has ended: the frames above this one (the
            # server's, the framework's) still hold the request and its scope until then, and
            # cycles through them would outlive a collection made here.
            asyncio.get_running_loop().call_soon(give_back)


async def _disconnect(receive: Receive) -> None:
    """Returns once the server reports the client gone (or the response complete)."""
    while (await receive())["type"] != "http.disconnect":
        pass
