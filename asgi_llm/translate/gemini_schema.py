"""JSON Schema -> Gemini's Schema object (an OpenAPI 3.0 subset), for function parameters and
`responseSchema`.

Local `$ref`s are inlined, `["string", "null"]` becomes `nullable`, `oneOf` becomes `anyOf`,
annotations Gemini has no field for are dropped (they constrain nothing), and a keyword
that constrains the output but has no Gemini equivalent is refused with a 400 naming where
it is, never dropped: an answer that ignores the schema would look valid to the client.
"""

from __future__ import annotations

from typing import Any

from asgi_llm.errors import InvalidRequest

_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}
# Carried as they are (Gemini spells them as JSON Schema does).
_KEPT = frozenset(
    {
        "title",
        "description",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "default",
        "example",
    }
)
# Annotations: no effect on what the model may write.
_DROPPED = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$anchor",
        "examples",
        "readOnly",
        "writeOnly",
        "deprecated",
        "contentEncoding",
        "contentMediaType",
        "strict",
    }
)
# The formats Gemini accepts per type; any other format is an annotation and is dropped.
_FORMATS = {"string": {"enum", "date-time"}, "integer": {"int32", "int64"}, "number": {"float", "double"}}
_MAX_NODES = 2_000  # schemas converted, `$ref`s inlined: a bound on what a request may expand to


def schema_error(where: str, what: str) -> InvalidRequest:
    return InvalidRequest(
        f"'{where}' {what}: Gemini's schema subset cannot carry it, so it is refused rather than dropped.",
        param=where,
        code="unsupported_schema",
    )


def to_gemini_schema(schema: Any, where: str, *, ordered: bool = False) -> dict[str, Any]:
    """The Gemini Schema for a JSON Schema; `ordered` adds `propertyOrdering` (the schema's
    own order, which Gemini otherwise replaces by the alphabetical one in its output)."""
    if not isinstance(schema, dict):
        raise InvalidRequest(f"'{where}' must be a JSON Schema object.", param=where, code="invalid_type")
    definitions: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, dict):
            definitions.update({f"#/{key}/{name}": value for name, value in found.items()})
    return _Converter(definitions, ordered).convert(schema, where, ())


class _Converter:
    __slots__ = ("definitions", "ordered", "nodes")

    def __init__(self, definitions: dict[str, Any], ordered: bool) -> None:
        self.definitions = definitions
        self.ordered = ordered
        self.nodes = 0

    def convert(self, schema: Any, where: str, refs: tuple[str, ...]) -> dict[str, Any]:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            # Refs that each use another twice double at every level: inlined, a small
            # request could expand past any memory.
            raise schema_error(where, f"expands to more than {_MAX_NODES} schemas once its $refs are inlined")
        if schema is True or schema == {}:
            raise schema_error(where, "allows any value")
        if not isinstance(schema, dict):
            raise InvalidRequest(f"'{where}' must be a schema object.", param=where, code="invalid_type")
        ref = schema.get("$ref")
        if ref is not None:
            if ref in refs:
                raise schema_error(where, f"is recursive ($ref {str(ref)[:60]!r})")
            target = self.definitions.get(ref) if isinstance(ref, str) else None
            if target is None:
                raise schema_error(f"{where}.$ref", "is not a local #/$defs/ reference")
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            return {**self.convert(target, where, (*refs, ref)), **self._annotations(siblings)}
        out: dict[str, Any] = {}
        nullable = False
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            nullable = len(kinds) < len(kind)
            if len(kinds) == 1:
                kind = kinds[0]
            elif kinds:
                branches = [self.convert({**schema, "type": k}, where, refs) for k in kinds]
                return {"anyOf": branches, **({"nullable": True} if nullable else {})}
            else:
                kind = "null"
        if kind is not None and kind not in _TYPES:
            raise InvalidRequest(f"'{where}.type' is not a JSON Schema type.", param=f"{where}.type")
        for name, value in schema.items():
            if name in ("type", "$defs", "definitions") or name in _DROPPED:
                continue
            if name in _KEPT:
                out[name] = value
            elif name == "format":
                if isinstance(value, str) and value in _FORMATS.get(str(kind), ()):
                    out["format"] = value
            elif name == "enum":
                out.update(self._enum(value, kind, f"{where}.enum"))
                nullable = nullable or None in (value if isinstance(value, list) else ())
            elif name == "const":
                out.update(self._enum([value], kind, f"{where}.const"))
            elif name in ("anyOf", "oneOf"):
                out.update(self._any_of(value, f"{where}.{name}", refs))
                nullable = nullable or out.pop("nullable", False)
            elif name == "allOf" and isinstance(value, list) and len(value) == 1:
                out.update(self.convert(value[0], f"{where}.allOf[0]", refs))
            elif name == "properties":
                out["properties"] = self._properties(value, f"{where}.properties", refs)
            elif name == "required":
                out["required"] = value
            elif name == "items":
                out["items"] = self.convert(value, f"{where}.items", refs)
            elif name == "additionalProperties":
                # false is what an object without it produces anyway; true adds nothing
                # the model would use. A schema for extra keys cannot be said.
                if not isinstance(value, bool):
                    raise schema_error(f"{where}.additionalProperties", "is a schema")
            else:
                raise schema_error(f"{where}.{name}", "has no Gemini equivalent")
        if kind is not None:
            out["type"] = str(kind).upper()
            if kind == "object" and not out.get("properties"):
                raise schema_error(where, "is an object without properties")
        if self.ordered and isinstance(out.get("properties"), dict) and len(out["properties"]) > 1:
            out["propertyOrdering"] = list(out["properties"])
        if nullable:
            out["nullable"] = True
        return out

    def _annotations(self, siblings: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in siblings.items() if k in ("title", "description")}

    @staticmethod
    def _enum(values: Any, kind: Any, where: str) -> dict[str, Any]:
        if not isinstance(values, list) or not values:
            raise InvalidRequest(f"'{where}' must be a non-empty array.", param=where, code="invalid_type")
        strings = [v for v in values if v is not None]
        if kind not in (None, "string") or not all(isinstance(v, str) for v in strings):
            raise schema_error(where, "lists values that are not strings (Gemini's enums are strings)")
        return {"enum": strings, "format": "enum", "type": "STRING"}

    def _any_of(self, branches: Any, where: str, refs: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(branches, list) or not branches:
            raise InvalidRequest(f"'{where}' must be a non-empty array.", param=where, code="invalid_type")
        kept = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null" and len(b) == 1)]
        nullable = len(kept) < len(branches)
        converted = [self.convert(b, f"{where}[{i}]", refs) for i, b in enumerate(kept)]
        out: dict[str, Any] = converted[0] if len(converted) == 1 else {"anyOf": converted}
        return {**out, "nullable": True} if nullable else out

    def _properties(self, properties: Any, where: str, refs: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(properties, dict):
            raise InvalidRequest(f"'{where}' must be an object.", param=where, code="invalid_type")
        return {name: self.convert(value, f"{where}.{name}", refs) for name, value in properties.items()}


__all__ = ["schema_error", "to_gemini_schema"]
