"""The dashboard's files: shipped as package data, whole (every import resolves), and
nothing the CSP would refuse or that could turn data into markup."""

from __future__ import annotations

import configparser
import fnmatch
import re
from pathlib import Path

from asgi_llm.dashboard.assets import Assets

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "asgi_llm" / "dashboard" / "static"


def test_every_file_is_package_data():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in setup["options.package_data"]["asgi_llm.dashboard"].split(",")]
    for path in STATIC.rglob("*"):
        if path.is_file():
            relative = path.relative_to(ROOT / "asgi_llm" / "dashboard").as_posix()
            assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative
    assert set(Assets.load().names()) == {
        p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()
    }


def test_every_module_import_resolves():
    for module in STATIC.rglob("*.js"):
        for target in re.findall(r'^import .* from "(\.[^"]+)";$', module.read_text(), re.M):
            assert (module.parent / target).resolve().is_file(), (module.name, target)


def test_nothing_inline_and_no_markup_from_data():
    for page in STATIC.glob("*.html"):
        text = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), page.name
        assert "<style" not in text and " style=" not in text and not re.search(r"\son[a-z]+=", text), (
            page.name
        )
    for module in STATIC.rglob("*.js"):
        text = module.read_text()
        for banned in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "eval(",
            "new Function",
            "document.write",
        ):
            assert banned not in text, (module.name, banned)
        assert 'setAttribute("style"' not in text and "localStorage" not in text, module.name
