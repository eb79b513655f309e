"""StatsDExporter: the metrics as StatsD lines with DogStatsD tags, over UDP.

    asgi_llm.requests:1|c|#endpoint:chat,model:gpt-4o-mini,deployment:openai-mini,status:2xx

A request's lines go out as one datagram (several when they pass `max_packet_bytes`),
through a non-blocking socket: a full buffer or a network error drops the datagram and
counts it (`dropped`), and nothing ever waits. Tag values are stripped of the characters
that frame the protocol (`|`, `:`, `#`, `,`, newlines), so no value can inject a line.

Our own ~100-line sender rather than a library: pystatsd refuses tags by design, and the
`datadog` package brings an HTTP API client and a process-global `statsd` object we do not
want; a bounded `socket.sendto` with drop-on-EAGAIN is all the protocol needs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable, Mapping

from asgi_llm.metrics.exporter import BaseExporter, ProxyState
from asgi_llm.metrics.record import RequestRecord

log = logging.getLogger("asgi_llm.metrics")

_UNSAFE = str.maketrans({c: "_" for c in "|:#,@\n\r\t\x00 "})
MAX_TAG_CHARS = 200
RESOLVE_EVERY_S = 60.0  # a StatsD agent behind a DNS name may move (Kubernetes)


def tag_value(value: object) -> str:
    """A tag value that cannot break the line: framing characters become `_`."""
    text = str(value)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else "_" for c in text)
    return text.translate(_UNSAFE)[:MAX_TAG_CHARS] or "_"


class UDPSender:
    """Datagrams to one host:port from a non-blocking socket; drops what it cannot send."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sent = self.dropped = 0
        self._address: tuple[str, int] | None = None
        self._socket: socket.socket | None = None
        self._resolving: asyncio.Task[None] | None = None
        self._resolved_at = 0.0
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:  # an address needs no resolver: ready at once, no loop needed
            self._use((str(literal), port), socket.AF_INET6 if literal.version == 6 else socket.AF_INET)
            self._resolved_at = float("inf")

    def _use(self, address: tuple[str, int], family: int) -> None:
        if self._socket is None or self._socket.family != family:
            if self._socket is not None:
                self._socket.close()
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self._socket = sock
        self._address = address

    async def resolve(self) -> None:
        """Look the host name up without blocking the loop (getaddrinfo runs in a thread)."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            log.warning("statsd: cannot resolve %s: %s", self.host, exc.__class__.__name__)
            return
        finally:
            self._resolved_at = time.monotonic()
        family, _, _, _, address = infos[0]
        self._use((str(address[0]), int(address[1])), family)

    def maybe_resolve(self) -> None:
        """Start a lookup in the background when due (first use, then every minute)."""
        if time.monotonic() - self._resolved_at < RESOLVE_EVERY_S:
            return
        if self._resolving is not None and not self._resolving.done():
            return
        try:
            self._resolving = asyncio.get_running_loop().create_task(self.resolve())
        except RuntimeError:  # no loop: the next call from one will resolve
            pass

    def send(self, payload: bytes) -> None:
        sock, address = self._socket, self._address
        if sock is None or address is None:
            self.maybe_resolve()
            self.dropped += 1
            return
        try:
            sock.sendto(payload, address)
        except OSError:  # BlockingIOError (buffer full) included: drop, never wait
            self.dropped += 1
        else:
            self.sent += 1

    def close(self) -> None:
        if self._resolving is not None:
            self._resolving.cancel()
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class StatsDExporter(BaseExporter):
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8125,
        *,
        prefix: str = "asgi_llm",
        tags: Mapping[str, str] | None = None,
        max_packet_bytes: int = 1432,
    ) -> None:
        self.sender = UDPSender(host, port)
        self.prefix = prefix
        self.max_packet_bytes = max_packet_bytes
        constant = ",".join(f"{tag_value(k)}:{tag_value(v)}" for k, v in (tags or {}).items())
        self._constant = constant
        self._tags: dict[tuple[str, ...], str] = {}  # label tuple -> its rendered tag suffix

    def _suffix(self, names: tuple[str, ...], values: tuple[str, ...]) -> str:
        key = (*names, *values)
        suffix = self._tags.get(key)
        if suffix is None:
            parts = [f"{n}:{tag_value(v)}" for n, v in zip(names, values, strict=True)]
            if self._constant:
                parts.append(self._constant)
            suffix = self._tags[key] = "|#" + ",".join(parts) if parts else ""
        return suffix

    # -- the hot path -----------------------------------------------------------------
    def record(self, request: RequestRecord) -> None:
        p = self.prefix
        model, deployment = request.model, request.deployment
        pair = self._suffix(("model", "deployment"), (model, deployment))
        lines = [
            f"{p}.requests:1|c"
            + self._suffix(
                ("endpoint", "model", "deployment", "status", "cache"),
                (request.endpoint, model, deployment, request.status_class, request.cache),
            ),
            f"{p}.request.duration:{request.total_s * 1000:.3f}|ms{pair}",
        ]
        if request.ttft_s is not None:
            lines.append(f"{p}.time_to_first_token:{request.ttft_s * 1000:.3f}|ms{pair}")
        if request.upstream_s is not None:
            lines.append(f"{p}.upstream.duration:{request.upstream_s * 1000:.3f}|ms{pair}")
        if request.overhead_s is not None:
            lines.append(
                f"{p}.proxy.overhead:{request.overhead_s * 1000:.3f}|ms"
                + self._suffix(("endpoint",), (request.endpoint,))
            )
        if request.prompt_tokens:
            lines.append(f"{p}.tokens.prompt:{request.prompt_tokens}|c{pair}")
        if request.completion_tokens:
            lines.append(f"{p}.tokens.completion:{request.completion_tokens}|c{pair}")
        for kind, tokens in request.token_kinds:
            lines.append(
                f"{p}.tokens:{tokens}|c"
                + self._suffix(("model", "deployment", "kind"), (model, deployment, kind))
            )
        if request.cost_usd:
            lines.append(f"{p}.cost_usd:{request.cost_usd:.8f}|c{pair}")
        if request.error_type is not None:
            code = request.error_code or "none"
            lines.append(
                f"{p}.errors:1|c"
                + self._suffix(
                    ("endpoint", "model", "type", "code"), (request.endpoint, model, request.error_type, code)
                )
            )
            if request.rate_limited:
                lines.append(
                    f"{p}.ratelimit.rejections:1|c" + self._suffix(("model", "reason"), (model, code))
                )
        if request.cache == "hit" and request.cache_kind is not None:
            lines.append(f"{p}.cache.hits:1|c" + self._suffix(("model", "kind"), (model, request.cache_kind)))
        if request.cache_stage is not None:
            lines.append(
                f"{p}.cache.semantic:1|c" + self._suffix(("model", "stage"), (model, request.cache_stage))
            )
        if request.attempts > 1:
            lines.append(f"{p}.failovers:{request.attempts - 1}|c" + self._suffix(("model",), (model,)))
        if request.fallback_from is not None:
            lines.append(
                f"{p}.fallbacks:1|c" + self._suffix(("model", "fallback"), (request.fallback_from, model))
            )
        if request.stream_failure is not None:
            lines.append(
                f"{p}.stream.failures:1|c" + self._suffix(("model", "code"), (model, request.stream_failure))
            )
        if request.disconnected:
            lines.append(f"{p}.client.disconnects:1|c" + self._suffix(("endpoint",), (request.endpoint,)))
        self._send(lines)

    def _send(self, lines: Iterable[str]) -> None:
        packet: list[bytes] = []
        size = 0
        limit = self.max_packet_bytes
        for line in lines:
            data = line.encode()
            if len(data) > limit:
                self.sender.dropped += 1
                continue
            if size + len(data) + 1 > limit and packet:
                self.sender.send(b"\n".join(packet))
                packet, size = [], 0
            packet.append(data)
            size += len(data) + 1
        if packet:
            self.sender.send(b"\n".join(packet))

    # -- the rest ---------------------------------------------------------------------
    def state(self, state: ProxyState) -> None:
        p = self.prefix
        lines = [f"{p}.requests.in_flight:{state.in_flight}|g" + self._suffix((), ())]
        lines += [
            f"{p}.backend.degraded:{int(down)}|g" + self._suffix(("backend",), (backend,))
            for backend, down in state.degraded.items()
        ]
        lines += [
            f"{p}.deployment.cooling:{int(cooling)}|g" + self._suffix(("deployment",), (deployment,))
            for deployment, cooling in state.cooling.items()
        ]
        self._send(lines)
        self.sender.maybe_resolve()

    def config_reloaded(self, ok: bool) -> None:
        self._send(
            [f"{self.prefix}.config.reloads:1|c" + self._suffix(("result",), ("ok" if ok else "failed",))]
        )

    async def start(self) -> None:
        if self.sender._address is None:  # noqa: SLF001 - our own sender
            await self.sender.resolve()

    async def aclose(self) -> None:
        self.sender.close()

    @property
    def dropped(self) -> int:
        return self.sender.dropped


__all__ = ["StatsDExporter", "UDPSender", "tag_value"]
