"""The dashboard's files, shipped inside the package (asgi_llm/dashboard/static/): read once
when the layer is built, served from memory with an ETag. No CDN, no build step."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

_TYPES = {
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".html": b"text/html; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".txt": b"text/plain; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: bytes
    etag: bytes


class Assets:
    """Every file under static/ by its relative path (`app.js`, `pages/overview.js`)."""

    def __init__(self, files: dict[str, Asset]) -> None:
        self._files = files

    @classmethod
    def load(cls) -> Assets:
        root = resources.files("asgi_llm.dashboard").joinpath("static")
        files: dict[str, Asset] = {}
        stack = [("", root)]
        while stack:
            prefix, folder = stack.pop()
            for entry in folder.iterdir():
                name = prefix + entry.name
                if entry.is_dir():
                    stack.append((name + "/", entry))
                    continue
                suffix = name[name.rfind(".") :]
                content_type = _TYPES.get(suffix)
                if content_type is None:
                    continue
                body = entry.read_bytes()
                etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
                files[name] = Asset(body, content_type, etag)
        return cls(files)

    def get(self, name: str) -> Asset | None:
        return self._files.get(name)

    def names(self) -> list[str]:
        return sorted(self._files)


__all__ = ["Asset", "Assets"]
