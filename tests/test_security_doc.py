"""docs/security.md stays true: every row of the threat matrix (THREATS.md section (b)) has a
row in it, and every `tests/...py::name` it cites names a test (or fixture) that exists.

THREATS.md lives outside the repository (../shared/THREATS.md): the matrix ids are frozen
here, and checked against that file whenever it is present."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "security.md"
THREATS = ROOT.parent / "shared" / "THREATS.md"

MATRIX_IDS = (
    [f"J{i}" for i in range(1, 12)]
    + [f"K{i}" for i in range(1, 9)]
    + [f"R{i}" for i in range(1, 6)]
    + [f"L{i}" for i in range(1, 10)]
    + [f"C{i}" for i in range(1, 9)]
    + [f"H{i}" for i in range(1, 14)]
    + [f"U{i}" for i in range(1, 15)]
    + ["D1"]
    + [f"G{i}" for i in range(1, 7)]
    + ["O1"]
)
ROW = re.compile(r"^\| ([A-Z][0-9]+) \|", re.M)
REFERENCE = re.compile(r"\b(tests/[\w/]+\.py)::(\w+)")


def doc_rows() -> dict[str, str]:
    """{matrix id: the whole table row} of the matrix tables (the incident table that
    follows them is not part of it)."""
    text = DOC.read_text().split("\n## Incidents", 1)[0]
    rows: dict[str, str] = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} has two rows in {DOC.name}"
            rows[match.group(1)] = line
    return rows


def test_frozen_ids_are_unique_and_76():
    assert len(MATRIX_IDS) == len(set(MATRIX_IDS)) == 76


@pytest.mark.skipif(not THREATS.exists(), reason=f"{THREATS} is not present")
def test_frozen_ids_match_the_threats_file():
    text = THREATS.read_text()
    start = text.index("## (b)")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else None]
    assert ROW.findall(section) == MATRIX_IDS


def test_every_matrix_id_has_a_row():
    rows = doc_rows()
    missing = [i for i in MATRIX_IDS if i not in rows]
    assert not missing, f"no row in {DOC.name} for {missing}"
    assert set(rows) == set(MATRIX_IDS), f"rows for unknown ids: {sorted(set(rows) - set(MATRIX_IDS))}"


def test_every_row_has_a_status_and_tests_unless_not_covered():
    for matrix_id, row in doc_rows().items():
        cells = [cell.strip() for cell in row.strip().strip("|").split(" | ")]
        assert len(cells) == 4, f"{matrix_id}: expected 4 cells, got {len(cells)}"
        status = re.match(r"\*\*(covered|partial|not covered|n/a)\*\*", cells[3])
        assert status, f"{matrix_id}: the test(s) cell must start with a status"
        if status.group(1) in ("covered", "partial"):
            assert REFERENCE.search(cells[3]), f"{matrix_id}: {status.group(1)} but no test named"


def test_every_referenced_test_exists():
    references = sorted(set(REFERENCE.findall(DOC.read_text())))
    assert references
    problems = []
    for path, name in references:
        source = ROOT / path
        if not source.is_file():
            problems.append(f"{path}: no such file")
            continue
        if not re.search(rf"^\s*(async\s+)?def {name}\(", source.read_text(), re.M):
            problems.append(f"{path}::{name}: no such function")
    assert not problems, "\n".join(problems)
