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
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _call(self, coroutine_function: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coroutine_function(), self._loop).result(5)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                      reuse_address=True)

    async def _close_all(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()

    # -- the pumps ------------------------------------------------------------------------
    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
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
        try:
            await asyncio.gather(
                self._pump(client_reader, upstream_writer, downstream=False),
                self._pump(upstream_reader, client_writer, downstream=True),
                return_exceptions=True,
            )
        finally:
            self.active -= 1
            for writer in (client_writer, upstream_writer):
                self._writers.discard(writer)
                writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    downstream: bool) -> None:
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
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                if downstream:
                    self.bytes_down += len(piece)
                if len(pieces) > 1:
                    await asyncio.sleep(faults.slice_delay_ms / 1000)
                elif faults.bandwidth:
                    await asyncio.sleep(len(piece) / faults.bandwidth)
            sent += len(data)
        if writer.can_write_eof():
            writer.write_eof()
