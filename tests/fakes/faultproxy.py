"""An asyncio TCP fault proxy (a small toxiproxy): put it between the proxy and an upstream
or Redis, and switch faults on and off while traffic flows.

    with FaultProxy(("127.0.0.1", 6379)) as fp:
        url = f"redis://127.0.0.1:{fp.port}/0"
        fp.set(blackhole=True)        # bytes stop flowing, sockets stay open
        fp.set(latency_ms=200)        # each chunk delayed
        fp.set(slice_bytes=1)         # upstream->client in 1-byte segments
        fp.set(limit_bytes=500)       # close after 500 bytes upstream->client
        fp.set(reset_after_bytes=500) # RST after 500 bytes
        fp.down()  /  fp.up()         # refuse new connections (ECONNREFUSED) / accept again
        fp.stall()                    # new connections hang in the handshake (connect timeout)

It runs in a background thread with its own loop, so sync and async tests can both use it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from dataclasses import dataclass, fields
from typing import Any


@dataclass
class Faults:
    latency_ms: float = 0.0
    bandwidth: int = 0  # bytes per second, 0 = unlimited
    slice_bytes: int = 0  # upstream->client segments of at most this size
    slice_delay_ms: float = 1.0
    limit_bytes: int = 0  # close after this many upstream->client bytes
    reset_after_bytes: int = 0  # reset (RST) after this many upstream->client bytes
    blackhole: bool = False
    accept_then_close: bool = False


class FaultProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.faults = Faults()
        self.accepted = 0
        self.active = 0
        self.bytes_down = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._stalled: list[socket.socket] = []  # the full-backlog listener and its fillers
        self.port = 0

    # -- control (thread-safe: plain attribute stores) -----------------------------------
    def set(self, **faults: Any) -> None:
        known = {f.name for f in fields(Faults)}
        for name, value in faults.items():
            if name not in known:
                raise TypeError(f"unknown fault {name!r}")
            setattr(self.faults, name, value)

    def clear(self) -> None:
        self.faults = Faults()

    def down(self) -> None:
        """Close the listener and every live connection: new connections are refused."""
        self._call(self._close_all)

    def up(self) -> None:
        self._call(self._listen)

    def stall(self) -> None:
        """New connections hang in the TCP handshake (a listener whose accept queue is full:
        the kernel drops their SYNs), so clients hit their *connect* timeout. Connections
        already open keep working. `up()` ends it."""
        self._call(self._stall)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True, name="fault-proxy")
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._call(self._close_all)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        loop.run_until_complete(self._listen())
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._cancel_pending())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    @staticmethod
    async def _cancel_pending() -> None:
        """Connections still pumping at stop: end them quietly (no "Task was destroyed")."""
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _call(self, coroutine_function: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coroutine_function(), self._loop).result(5)

    async def _listen(self) -> None:
        for sock in self._stalled:
            sock.close()
        self._stalled.clear()
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, reuse_address=True
            )

    async def _stall(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._stalled:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(0)  # never accepted: one queued connection fills it
        self._stalled.append(listener)
        for _ in range(2):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self._stalled.append(filler)
        await asyncio.sleep(0.05)  # let the fillers' handshakes land in the queue

    async def _close_all(self) -> None:
        for sock in self._stalled:
            sock.close()
        self._stalled.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()

    # -- the pumps ------------------------------------------------------------------------
    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            await self._connection(client_reader, client_writer)
        except asyncio.CancelledError:
            pass  # stop(): ends quietly (asyncio's start_server callback reads the outcome)

    async def _connection(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self.accepted += 1
        if self.faults.accept_then_close:
            client_writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self.active += 1
        self._writers.update((client_writer, upstream_writer))
        pumps = [
            asyncio.ensure_future(self._pump(client_reader, upstream_writer, downstream=False)),
            asyncio.ensure_future(self._pump(upstream_reader, client_writer, downstream=True)),
        ]
        try:
            # Either side closing ends the connection (as toxiproxy does): a keep-alive
            # upstream would otherwise hold a connection its client has long left.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self.active -= 1
            for writer in (client_writer, upstream_writer):
                self._writers.discard(writer)
                writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, downstream: bool
    ) -> None:
        sent = 0
        while True:
            data = await reader.read(65536)
            if not data:
                break
            faults = self.faults
            while faults.blackhole:
                await asyncio.sleep(0.01)  # hold everything; sockets stay open
                faults = self.faults
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            if downstream:
                if faults.reset_after_bytes and sent + len(data) >= faults.reset_after_bytes:
                    writer.write(data[: max(0, faults.reset_after_bytes - sent)])
                    await writer.drain()
                    sock = writer.get_extra_info("socket")
                    if sock is not None:  # SO_LINGER 0: close with RST
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                if faults.limit_bytes and sent + len(data) >= faults.limit_bytes:
                    writer.write(data[: max(0, faults.limit_bytes - sent)])
                    await writer.drain()
                    writer.close()
                    return
            pieces = [data]
            if downstream and faults.slice_bytes:
                size = faults.slice_bytes
                pieces = [data[i : i + size] for i in range(0, len(data), size)]
            elif faults.bandwidth:  # a trickle (100 ms worth at a time), not bursts and pauses
                size = max(1, faults.bandwidth // 10)
                pieces = [data[i : i + size] for i in range(0, len(data), size)]
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                if downstream:
                    self.bytes_down += len(piece)
                if faults.bandwidth and not (downstream and faults.slice_bytes):
                    await asyncio.sleep(len(piece) / faults.bandwidth)
                elif len(pieces) > 1:
                    await asyncio.sleep(faults.slice_delay_ms / 1000)
            sent += len(data)
        if writer.can_write_eof():
            writer.write_eof()
