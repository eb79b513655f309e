"""The packaged model table (asgi_llm/config/model_facts.py and models.json): dated, sourced,
sane, shipped with the package, and looked up without guessing."""

from __future__ import annotations

import configparser
import datetime
from pathlib import Path

import pytest

from asgi_llm.config.model_facts import (
    DATA_FILE,
    FACT_CAPABILITIES,
    facts_for,
    model_table,
    parse_table,
    spellings,
    tables_for,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_table_says_its_date_its_sources_and_to_verify_it():
    table = model_table()
    assert datetime.date.fromisoformat(table.as_of) <= datetime.date.today()
    assert "verify" in table.verify and table.as_of in table.verify
    assert set(table.sources) == set(table.tables)
    assert all(source.startswith("https://") for source in table.sources.values())


def test_every_price_is_sane():
    for name, models in model_table().tables.items():
        for model, facts in models.items():
            prices = facts.prices
            where = f"{name}.{model}"
            assert prices.get("input", 0) > 0, where
            if "output" in prices:  # a chat model; embeddings cost input only
                assert prices["output"] >= prices["input"], where
            if "cache_read" in prices:
                assert prices["cache_read"] < prices["input"], where
            if "cache_write" in prices:
                assert prices["input"] <= prices["cache_write"] <= prices.get("cache_write_1h", 1e9), where
            assert facts.capabilities <= FACT_CAPABILITIES, where
            if facts.context_window is not None:
                assert facts.context_window >= 4096, where
                assert facts.max_output is None or facts.max_output <= facts.context_window, where


def test_the_data_file_is_package_data():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    shipped = [p.strip() for p in setup["options.package_data"]["asgi_llm"].replace(",", "\n").split()]
    assert f"config/{DATA_FILE}" in shipped


def test_the_file_is_checked_when_read():
    with pytest.raises(ValueError, match="openai.x"):
        parse_table(
            b'{"as_of": "", "verify": "", "tables": {"openai": {"source": "", "models": {"x":'
            b' {"inptu": 1}}}}}'
        )
    with pytest.raises(ValueError, match="telepathy"):
        parse_table(
            b'{"as_of": "", "verify": "", "tables": {"openai": {"source": "",'
            b' "models": {"x": {"input": 1, "capabilities": ["telepathy"]}}}}}'
        )


def test_names_are_tried_as_written_then_without_what_varies_between_releases():
    assert spellings("us.anthropic.claude-sonnet-4-5-20250929-v1:0") == [
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "anthropic.claude-sonnet-4-5-20250929-v1",
        "anthropic.claude-sonnet-4-5-20250929",
        "anthropic.claude-sonnet-4-5",
    ]
    assert spellings("claude-haiku-4-5@20251001")[-1] == "claude-haiku-4-5"
    assert spellings("gpt-4o") == ["gpt-4o"]
    # the exact name wins over a shorter one: Titan v1 and v2 are different models
    assert facts_for("bedrock", "amazon.titan-embed-text-v1").prices["input"] == 0.1
    assert facts_for("bedrock", "amazon.titan-embed-text-v2:0").prices["input"] == 0.02


def test_which_tables_a_provider_reads():
    assert tables_for("vertex", "gemini-2.5-pro") == ("vertex", "gemini")
    assert tables_for("vertex", "claude-opus-4-1@20250805") == ("anthropic",)
    assert tables_for("openai-compatible", "gpt-4o") == ()
    assert tables_for("ollama", "llama3.1") == ()


def test_capabilities_and_context_windows():
    gpt35 = facts_for("openai", "gpt-3.5-turbo-0125")
    assert gpt35 is not None and gpt35.capabilities == {"tools"} and gpt35.context_window == 16385
    flash = facts_for("gemini", "gemini-2.5-flash")
    assert flash is not None and flash.capabilities == {"vision", "tools", "reasoning"}
    assert flash.context_window == 1_048_576 and flash.max_output == 65_536
    micro = facts_for("bedrock", "us.amazon.nova-micro-v1:0")
    assert micro is not None and "vision" not in micro.capabilities
