"""The public surface is what docs/api.md lists: pinned here, names and signatures."""

import ast
import importlib
import inspect
import re
import time
from pathlib import Path

import asgi_llm

API_DOC = (Path(__file__).parents[1] / "docs" / "api.md").read_text()
SPAN = re.compile(r"`([A-Za-z_][\w.]*)(?:\((.*?)\))?`")


def test_public_names():
    assert set(asgi_llm.__all__) >= {
        "AuthMiddleware",
        "CacheMiddleware",
        "Config",
        "ConfigError",
        "ConfigManager",
        "LLMContext",
        "LLMLayer",
        "MetricsMiddleware",
        "Principal",
        "ProviderApp",
        "ProxyError",
        "RateLimitMiddleware",
        "RouterMiddleware",
        "Usage",
        "build_app",
        "get_context",
        "lifespan",
    }
    for name in asgi_llm.__all__:  # each is asgi_llm's own, not a name re-exported from elsewhere
        assert getattr(asgi_llm, name).__module__.startswith("asgi_llm."), name


def first_cells(section: str) -> list[str]:
    """The first column of the table under `## <section>`."""
    body = API_DOC.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [line.split(" | ")[0].lstrip("| ") for line in body.splitlines() if line.startswith("| `")]


def resolve(dotted: str):
    if dotted.startswith("asgi_llm."):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
            return obj
        raise ImportError(dotted)
    obj = asgi_llm
    for attr in dotted.split("."):
        obj = getattr(obj, attr)
    return obj


def documented_params(text: str) -> list[tuple[str, bool, str | None]]:
    """`a, *, b=1` -> [(name, keyword_only, default text)]."""
    params, keyword_only = [], False
    for part in (p.strip() for p in re.split(r",(?![^(]*\))", text) if p.strip()):
        if part == "*":
            keyword_only = True
            continue
        name, _, default = part.partition("=")
        params.append((name.strip(), keyword_only, default.strip() or None))
    return params


def test_every_export_has_a_row_in_the_first_table():
    names = set()
    for cell in first_cells("`asgi_llm`"):
        names |= {match.group(1).split(".")[0] for match in SPAN.finditer(cell)}
    assert names == set(asgi_llm.__all__)


def test_documented_signatures_match_the_code():
    problems = []
    cells = first_cells("`asgi_llm`") + first_cells("From the subpackages")
    for cell in cells:
        for match in SPAN.finditer(cell):
            dotted, args = match.groups()
            obj = resolve(dotted)  # every name written there exists
            if args is None:
                continue
            signature = inspect.signature(obj)
            actual = [p for p in signature.parameters.values() if p.name not in ("self", "cls")]
            written = documented_params(args)
            if [w[0] for w in written] != [p.name for p in actual]:
                problems.append(
                    f"{dotted}: documented {[w[0] for w in written]}, code has {[p.name for p in actual]}"
                )
                continue
            for (name, keyword_only, default), param in zip(written, actual, strict=True):
                if keyword_only != (param.kind is param.KEYWORD_ONLY):
                    problems.append(f"{dotted}({name}): keyword-only is {param.kind is param.KEYWORD_ONLY}")
                if (default is None) != (param.default is param.empty):
                    problems.append(
                        f"{dotted}({name}): default documented {default!r}, code {param.default!r}"
                    )
                elif default is not None:
                    try:
                        value = ast.literal_eval(default)
                    except ValueError:
                        value = eval(default, {"time": time})  # e.g. time.monotonic
                    if value != param.default:
                        problems.append(f"{dotted}({name}): default {default}, code {param.default!r}")
    assert not problems, "docs/api.md disagrees with the code:\n" + "\n".join(problems)
