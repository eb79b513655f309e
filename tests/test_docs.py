"""Every fenced code block in README.md and docs/**/*.md is run or checked here, or says why not.

The rule, per block (by its fence's language):
- `yaml`: must load; a mapping with any top-level config section (`models`, `auth`, `cache`, ...)
  must also validate with `Config.from_dict` (a mock model is added when `models` is absent, and
  every `${VAR}` it names is supplied). Other YAML (Kubernetes, Prometheus, Datadog) only loads.
- `json`: must parse.
- `python`: is executed in a fresh namespace; if it defines `app`, the app gets one chat request
  (model: the first of its `config`, else `mock-1`) and must answer 200. In files whose blocks
  another test executes with their own setup (COVERED below), python blocks are compiled only.
- `sh`: every command is checked: `asgi-llm ...` must parse with the CLI's own argument parser,
  `python -m benchmarks.X` must name a benchmark module (and `benchmarks.run` its flags)
  (`hash-key` is run; `check-config` too when its file exists in the repository), `make X`
  must name a target of the Makefile. Any other command needs a fragment mark.
- Anything else (no language, `text`, `promql`, ...) cannot be checked: the block must be
  followed by a line starting with `(fragment`, e.g. `(fragment: a diagram)`.
A block followed by a `(fragment...)` line is not run standalone and is skipped, whatever its
language. So a new block either runs, or says in the doc why it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from asgi_llm import Config
from asgi_llm.cli import _parser, main
from asgi_llm.config.schema import ConfigModel
from tests.conftest import mock_model

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

# Files whose python blocks other tests execute (they need that test's server or names).
COVERED = {
    "README.md": "tests/test_readme.py",
    "docs/observability.md": "tests/metrics/test_docs.py",
    "docs/configuration.md": "tests/config/test_reference.py",
    "docs/security.md": "tests/test_security_doc.py",
}
SECTIONS = frozenset(ConfigModel.model_fields)
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
MAKE_TARGETS = frozenset(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository
    line: int  # of the opening fence
    language: str
    text: str
    fragment: bool

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    rel = path.relative_to(ROOT).as_posix()
    lines = path.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, language = opening.groups()
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        assert end < len(lines), f"{rel}:{index + 1}: code block never closed"
        body = (
            "\n".join(
                line[len(indent) :] if line.startswith(indent) else line for line in lines[index + 1 : end]
            )
            + "\n"
        )
        after = lines[end + 1].strip() if end + 1 < len(lines) else ""
        found.append(Block(rel, index + 1, language, body, after.startswith("(fragment")))
        index = end + 1
    return found


ALL = [block for path in FILES for block in blocks_of(path)]


def test_the_walk_finds_the_blocks():
    # Guards the walker itself: these blocks are known to exist.
    where = {(b.path, b.language) for b in ALL}
    assert {
        ("README.md", "python"),
        ("docs/usage.md", "python"),
        ("docs/auth.md", "yaml"),
        ("docs/limits.md", "json"),
    } <= where


@pytest.mark.parametrize(
    "block", [b for b in ALL if not b.fragment], ids=lambda b: f"{b.where}-{b.language or 'plain'}"
)
async def test_block(block: Block, asgi_client):
    check = CHECKS.get(block.language)
    assert check is not None, (
        f"{block.where}: a ```{block.language} block cannot be checked; use yaml, json, python "
        "or sh, or follow it with a line `(fragment: why)`"
    )
    await check(block, asgi_client)


# -- the checks ----------------------------------------------------------------------------


async def check_yaml(block: Block, asgi_client) -> None:
    data = yaml.safe_load(block.text)
    if isinstance(data, dict) and SECTIONS & set(data):
        environ = {name: f"doc-{name.lower()}" for name in re.findall(r"\$\{(\w+)\}", block.text)}
        Config.from_dict({"models": [mock_model()], **data}, environ=environ)


async def check_json(block: Block, asgi_client) -> None:
    json.loads(block.text)


async def check_python(block: Block, asgi_client) -> None:
    code = compile(block.text, block.where, "exec")
    if block.path in COVERED:
        return  # executed by COVERED[block.path]
    namespace: dict = {"__name__": "docs_example"}
    # In a thread of its own, as a reader's script would run: a block may call asyncio.run.
    await asyncio.to_thread(exec, code, namespace)
    app = namespace.get("app")
    if app is None:
        return
    config = namespace.get("config")
    model = config.models[0].name if isinstance(config, Config) and config.models else "mock-1"
    reply = await asgi_client(app=app).post(
        "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert reply.status_code == 200, f"{block.where}: {reply.status_code} {reply.text}"


async def check_sh(block: Block, asgi_client) -> None:
    for line in block.text.splitlines():
        argv = shlex.split(line, comments=True)
        while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):  # VAR=value before a command
            argv = argv[1:]
        if not argv:
            continue
        if argv[:2] == ["python", "-m"] and argv[2].startswith("benchmarks."):
            name = argv[2].removeprefix("benchmarks.")
            assert (ROOT / "benchmarks" / f"{name}.py").is_file(), f"{block.where}: no {argv[2]}"
            if name == "run":  # its flags are checked by its own parser
                from benchmarks.run import parse_args

                parse_args(argv[3:])
        elif argv[0] == "make":
            targets = [arg for arg in argv[1:] if "=" not in arg]
            assert set(targets) <= MAKE_TARGETS, f"{block.where}: no make target {targets}"
        elif argv[0] == "asgi-llm":
            try:
                args = _parser().parse_args(argv[1:])
            except SystemExit:
                pytest.fail(f"{block.where}: `{line.strip()}` is not a valid asgi-llm command")
            if args.command == "hash-key" or (
                args.command == "check-config" and (ROOT / args.path).is_file()
            ):
                argv = [*argv[1:-1], str(ROOT / args.path)] if args.command == "check-config" else argv[1:]
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    assert main(argv) == 0, f"{block.where}: `{line.strip()}` failed"
                if args.command == "hash-key":
                    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", out.getvalue())
        else:
            pytest.fail(
                f"{block.where}: cannot check `{line.strip()}`; follow the block with "
                "a line `(fragment: why)`"
            )


CHECKS = {"yaml": check_yaml, "json": check_json, "python": check_python, "sh": check_sh}
