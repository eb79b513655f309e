"""Load a config snapshot from a file or a dict: formats, `${VAR}` expansion, error paths."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import PrivateAttr, ValidationError

from asgi_llm.config.catalog import ModelCatalog
from asgi_llm.config.schema import ConfigModel, FieldError
from asgi_llm.errors import ConfigError
from asgi_llm.redact import redact_url_passwords

T = TypeVar("T")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}|\$\$")
_SECRET_FIELDS = frozenset(
    {
        "api_key",
        "client_secret",
        "key_sha256",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "headers",  # tracing.headers: the tracing backend's credentials
        "ui_secret",
    }
)


def field_path(loc: tuple[Any, ...]) -> str:
    """`('models', 2, 'deployments', 0, 'base_url')` -> `models[2].deployments[0].base_url`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def expand_env(value: Any, environ: Mapping[str, str], loc: tuple[Any, ...] = ()) -> Any:
    """Expand `${VAR}` / `${VAR:-default}` inside string values (never in keys)."""
    if isinstance(value, str):
        if "$" not in value:
            return value

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set", field=field_path(loc))

        return _VAR.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand_env(v, environ, (*loc, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, environ, (*loc, i)) for i, v in enumerate(value)]
    return value


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False):
        cause = item.get("ctx", {}).get("error")
        # A check across fields raises at its section; FieldError says where below it.
        loc = (*item["loc"], *cause.loc) if isinstance(cause, FieldError) else item["loc"]
        where = field_path(loc) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


class Config(ConfigModel):
    """An immutable, validated config snapshot. Build with `from_file` or `from_dict`."""

    _source: str | None = PrivateAttr(default=None)
    _catalog: ModelCatalog | None = PrivateAttr(default=None)
    _derived: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        source: str | None = None,
    ) -> Config:
        if not isinstance(data, Mapping):
            raise ConfigError("the top level must be a mapping", source=source)
        try:
            expanded = expand_env(dict(data), os.environ if environ is None else environ)
        except ConfigError as exc:
            raise ConfigError(exc.reason, source=source, field=exc.field) from None
        try:
            config = cls.model_validate(expanded)
        except ValidationError as exc:
            raise ConfigError(_describe(exc), source=source) from None
        config._source = source
        return config

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Config:
        path = Path(path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read: {exc.__class__.__name__}: {exc}", source=source) from None
        return cls.from_dict(parse_text(text, path.suffix, source), environ=environ, source=source)

    # Private attributes are read through `__pydantic_private__` directly: pydantic's
    # __getattr__ fallback costs microseconds, and these are read on every request.
    @property
    def source(self) -> str | None:
        return self.__pydantic_private__["_source"]  # type: ignore[index]

    @property
    def catalog(self) -> ModelCatalog:
        """The model catalog of this snapshot (built once, on first use)."""
        private = self.__pydantic_private__
        catalog: ModelCatalog | None = private["_catalog"]  # type: ignore[index]
        if catalog is None:
            catalog = private["_catalog"] = ModelCatalog(self)  # type: ignore[index]
        return catalog

    def derive(self, name: str, build: Callable[[Config], T]) -> T:
        """What a layer computes from this snapshot (parsed rules, key tables), built once.

        It lives and dies with the snapshot, so a reload never serves stale derived state.
        """
        derived = self.__pydantic_private__["_derived"]  # type: ignore[index]
        try:
            return derived[name]  # type: ignore[no-any-return]
        except KeyError:
            value = derived[name] = build(self)
            return value

    def redacted(self) -> dict[str, Any]:
        """The effective config as a dict with every secret replaced (for admin views and logs)."""
        return _redact(self.model_dump(mode="json"))


def parse_text(text: str, suffix: str, source: str) -> Any:
    suffix = suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml", ""):
            data = yaml.safe_load(text)  # None for nothing but comments, `---` or `~`
        else:
            raise ConfigError(f"unknown config format {suffix!r} (use .yaml, .toml or .json)", source=source)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse YAML: {_yaml_problem(exc)}", source=source) from None
    except json.JSONDecodeError as exc:
        if not text.strip():
            raise ConfigError("the file is empty", source=source) from None
        raise ConfigError(
            f"cannot parse JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", source=source
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot parse TOML: {exc}", source=source) from None
    # An empty file is a mistake (a failed render, the wrong path), never "no settings":
    # served, it would be a proxy without models. A YAML or JSON `{}` says so on purpose.
    if data is None or (suffix == ".toml" and not data):
        raise ConfigError("the file is empty", source=source)
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The problem and its position, never the offending line itself (it may hold a secret)."""
    problem = getattr(exc, "problem", None) or "invalid YAML"
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1} column {mark.column + 1}" if mark else problem


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("***" if k in _SECRET_FIELDS and v else _redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, str) and "@" in value:
        return redact_url_passwords(value)
    return value
