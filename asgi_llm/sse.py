"""Server-sent events, incrementally: whole events out of arbitrary TCP chunks."""

from __future__ import annotations

DONE = b"data: [DONE]"


class SSEError(ValueError):
    pass


class SSEDecoder:
    """Splits a byte stream into whole events (without their blank-line terminator).

    The partial event held between chunks is bounded by `max_event_bytes`.
    """

    __slots__ = ("_buffer", "_max")

    def __init__(self, max_event_bytes: int = 1 << 20) -> None:
        self._buffer = b""
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[bytes]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            # A trailing lone CR waits for the LF of the next chunk before it is folded.
            buffer = buffer.replace(b"\r\n", b"\n")
        end = buffer.rfind(b"\n\n")
        if end < 0:
            if len(buffer) > self._max:
                raise SSEError("an SSE event exceeds the size limit")
            self._buffer = buffer
            return []
        self._buffer = buffer[end + 2 :]
        if len(self._buffer) > self._max:
            raise SSEError("an SSE event exceeds the size limit")
        return [event for event in buffer[:end].split(b"\n\n") if event.strip(b"\n")]

    @property
    def pending(self) -> bytes:
        return self._buffer


def event_data(event: bytes) -> bytes | None:
    """The joined `data:` lines of one event, or None when it carries none (comments, pings)."""
    if event.startswith(b"data: ") and b"\n" not in event:
        return event[6:]  # the common case: one data line
    parts = []
    for line in event.lstrip(b"\n").split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(parts) if parts else None


def encode_event(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"
