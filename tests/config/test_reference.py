"""docs/configuration.md is the full reference: checked here against the schema, field by
field (path, type, default), so a field added or changed without its doc fails the suite."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from asgi_llm.config.schema import ConfigModel

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _submodel(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The section model a field holds, and how its path goes on (`[]`, `.<name>`, or ``)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            model, suffix = _submodel(arg)
            if model is not None:
                return model, suffix
    if origin is tuple and args and _submodel(args[0])[0] is not None:
        return _submodel(args[0])[0], "[]"
    if origin is dict and len(args) == 2 and _submodel(args[1])[0] is not None:
        return _submodel(args[1])[0], ".<name>"
    return None, ""


def type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return (" or ".join(type_name(a) for a in inner)) + (" or null" if len(inner) < len(args) else "")
    if origin is tuple:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}[annotation]


def default_text(field: FieldInfo) -> str:
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "section"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}" if not value else str(value)
    if isinstance(value, str):
        return f"`{value}`"
    return repr(value)


def fields(model: type[BaseModel] = ConfigModel, prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    for name, field in model.model_fields.items():
        path = prefix + name
        yield path, field
        sub, suffix = _submodel(field.annotation)
        if sub is not None:
            yield from fields(sub, path + suffix + ".")


def documented() -> dict[str, tuple[str, str]]:
    """{path: (type, default)} from the doc's table rows `| `path` | type | default | ... |`."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) >= 3 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def test_every_field_is_documented_with_its_type_and_default():
    rows = documented()
    problems = []
    for path, field in fields():
        expected = (type_name(field.annotation), default_text(field))
        if path not in rows:
            problems.append(f"missing: | `{path}` | {expected[0]} | {expected[1]} | ... |")
        elif rows[path] != expected:
            problems.append(f"{path}: documented {rows[path]}, schema says {expected}")
    assert not problems, "docs/configuration.md is out of date:\n" + "\n".join(problems)


def test_no_field_is_documented_that_does_not_exist():
    known = {path for path, _ in fields()}
    assert sorted(set(documented()) - known) == []
