"""The model catalog: one normaliser for the schema's duplicate check and the resolver."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from asgi_llm import Config, ConfigError
from asgi_llm.config.catalog import ModelCatalog, normalize_model_name
from tests.conftest import mock_model

CONFIG_PACKAGE = Path(__file__).resolve().parents[2] / "asgi_llm" / "config"


def config(*models: dict, **sections) -> Config:
    return Config.from_dict({"models": list(models), **sections})


def aliased(name: str, *aliases: str) -> dict:
    return {**mock_model(name), "aliases": list(aliases)}


@pytest.mark.parametrize("spelling", ["gpt", "GPT", " gpt ", "\uff47\uff50\uff54", "\uff27\uff30\uff34"])
def test_every_spelling_resolves_to_the_one_model(spelling):
    catalog = config(mock_model("gpt")).catalog
    entry = catalog.resolve(spelling)
    assert entry is not None and entry.name == "gpt"


@pytest.mark.parametrize(
    "twin",
    [
        "\uff47\uff50\uff54",  # full width
        "GPT",
        "g\u0070t",  # the same code points: a plain duplicate
        "\u1d4d\u1d56\u1d57",  # modifier letters (NFKC: g p t)
    ],
)
def test_a_name_that_folds_onto_another_is_refused(twin):
    with pytest.raises(ConfigError, match="used twice") as info:
        config(
            mock_model("gpt"), {**mock_model(twin), "deployments": [mock_model("other")["deployments"][0]]}
        )
    assert "models[1].name" in str(info.value)


def test_a_duplicate_alias_names_its_own_field():
    with pytest.raises(ConfigError) as info:
        config(aliased("a", "x"), aliased("b", "y", "\uff38"))
    message = str(info.value)
    assert "models[1].aliases[1]" in message and "(top level)" not in message
    assert "'a'" in message  # and which model holds it already


def test_a_name_no_catalog_can_hold_is_refused():
    with pytest.raises(ConfigError, match=r"models\[0\]\.aliases\[0\]: .*invisible"):
        config(aliased("gpt", "g\u200bpt"))


def test_fallbacks_resolve_through_the_same_normaliser():
    catalog = config(mock_model("a"), mock_model("b"), routing={"fallbacks": {"\uff21": ["B"]}}).catalog
    assert catalog.fallbacks == {"a": ("b",)}


def test_an_unknown_fallback_names_its_field():
    with pytest.raises(ConfigError, match=r"routing\.fallbacks\.a\[1\]: .*'nope'"):
        config(mock_model("a"), mock_model("b"), routing={"fallbacks": {"a": ["b", "nope"]}})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Mock-1", "mock-1"),
        ("  \uff4d\uff4f\uff43\uff4b  ", "mock"),
        ("Stra\u00dfe", "strasse"),
        ("", None),
        ("a\u200bb", None),
        ("x" * 257, None),
    ],
)
def test_normalize_model_name(name, expected):
    assert normalize_model_name(name) == expected


def test_normalizing_twice_changes_nothing():
    # "\u00df\u0301": casefold makes "ss\u0301", which NFKC composes again; without the
    # last NFKC a client sending the composed form would miss the model.
    for name in ("\u00df\u0301", "\u1e9b\u0323", "\uff21\u0301", "\u0130stanbul", "\u2160"):
        once = normalize_model_name(name)
        assert once is not None and normalize_model_name(once) == once


def test_the_catalog_is_built_from_a_snapshot():
    snapshot = config(aliased("gpt-4o", "4o"), mock_model("mini"))
    catalog = ModelCatalog(snapshot)
    assert [e.name for e in catalog.entries] == ["gpt-4o", "mini"]
    assert catalog.resolve("4O") is catalog.entries[0]
    assert set(catalog.deployments) == {"gpt-4o-d", "mini-d"}


def test_the_config_package_does_not_import_routing():
    """config <- routing, never the other way: the catalog lives in config now."""
    imported = set()
    for path in CONFIG_PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add((path.name, node.module))
            elif isinstance(node, ast.Import):
                imported.update((path.name, alias.name) for alias in node.names)
    assert not [item for item in imported if item[1].startswith("asgi_llm.routing")]
