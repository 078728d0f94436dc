"""A TCP proxy in front of one department's PostgreSQL, in a process of its own, for the load
test (bench/load.py): the hub reaches that department only through it, so cutting it is an
outage the hub sees as real (connections reset, new ones closed as soon as they are accepted),
not a setting the hub is told about.

Its own process, so that relaying the department's bytes costs neither the hub's CPU nor the
load client's, whose CPU the test reports. The parent steers it through a pipe: `pass`,
`drop`, `quit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from multiprocessing.connection import Connection

CHUNK = 65536


class _Relay:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.dropping = False
        self._writers: set[asyncio.StreamWriter] = set()

    def drop(self) -> None:
        self.dropping = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def accept(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        if self.dropping:
            client_out.transport.abort()
            return
        try:
            server_in, server_out = await asyncio.open_connection(*self.target)
        except OSError:
            client_out.transport.abort()
            return
        self._writers.update((client_out, server_out))
        pipes = [asyncio.create_task(_pipe(client_in, server_out)), asyncio.create_task(_pipe(server_in, client_out))]
        # Either side closing ends the link.
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        for writer in (client_out, server_out):
            writer.transport.abort()
            self._writers.discard(writer)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(CHUNK):
            sink.write(data)
            await sink.drain()


async def _serve(listen: int, target: tuple[str, int], commands: Connection) -> None:
    relay = _Relay(target)
    server = await asyncio.start_server(relay.accept, "127.0.0.1", listen)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def on_command() -> None:
        command = commands.recv()
        if command == "drop":
            relay.drop()
        elif command == "pass":
            relay.dropping = False
        elif not done.done():
            done.set_result(None)
        commands.send(command)  # the acknowledgement: the mode is in force

    loop.add_reader(commands.fileno(), on_command)
    commands.send("ready")
    await done
    server.close()
    relay.drop()


def _main(listen: int, target: tuple[str, int], commands: Connection) -> None:
    asyncio.run(_serve(listen, target, commands))


class Proxy:
    """The proxy process, listening on 127.0.0.1:`listen` and relaying to `target`."""

    def __init__(self, listen: int, target: tuple[str, int]) -> None:
        self.listen = listen
        self._commands, theirs = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=_main, args=(listen, target, theirs), daemon=True)
        self.process.start()
        self._expect("ready")

    def _expect(self, what: str) -> None:
        if not self._commands.poll(30) or self._commands.recv() != what:
            raise RuntimeError(f"the proxy did not answer {what!r}")

    def _tell(self, command: str) -> None:
        self._commands.send(command)
        self._expect(command)

    def drop(self) -> None:
        """From now on: every open connection reset, every new one closed on arrival."""
        self._tell("drop")

    def restore(self) -> None:
        self._tell("pass")

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError, RuntimeError):
                self._tell("quit")
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
