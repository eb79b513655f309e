"""Golden fixtures for the Responses translations (tests/translate/fixtures/responses/*.json).

Each file holds a description, the input and the exact expected output, ids included: they
come from `counter_ids()` (`msg_1`, `fc_1`, `fc_2`, ... in the order they are asked for).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
RESPONSE_ID = "resp_test"
CREATED_AT = 1700000000
COMPLETED_AT = 1700000002


def counter_ids() -> Callable[[str], str]:
    counts: dict[str, int] = {}

    def new_id(prefix: str) -> str:
        counts[prefix] = counts.get(prefix, 0) + 1
        return f"{prefix}_{counts[prefix]}"

    return new_id


def fixture_names(kind: str) -> list[str]:
    names = sorted(path.stem for path in FIXTURES.glob(f"{kind}_*.json"))
    assert names, f"no {kind} fixtures in {FIXTURES}"
    return names


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())
