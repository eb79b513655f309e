"""`asgi-llm migrate`: the ledger's schema brought up to date from the command line, and said
so; a database that cannot be reached is an exit 1 that never shows the URL's password."""

from __future__ import annotations

import json

from asgi_llm.cli import main
from asgi_llm.ledger.migrations import LATEST


def config_file(tmp_path, **document):
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps({"models": [], **document}))
    return str(path)


def test_migrate_applies_the_schema_once_and_says_the_version(tmp_path, capsys):
    path = config_file(tmp_path, ledger={"url": f"sqlite:///{tmp_path}/ledger.db"})
    for _ in range(2):  # the second run finds nothing to do
        assert main(["migrate", "--config", path]) == 0
        assert f"ledger schema at version {LATEST}" in capsys.readouterr().out
    assert (tmp_path / "ledger.db").exists()


def test_migrate_on_postgresql(tmp_path, capsys, pg_url):
    assert main(["migrate", "--config", config_file(tmp_path, ledger={"url": pg_url})]) == 0
    assert f"version {LATEST}" in capsys.readouterr().out


def test_an_unreachable_database_is_an_error_without_its_password(tmp_path, capsys):
    url = "postgresql://app:hunter2-secret@127.0.0.1:1/ledger"
    path = config_file(tmp_path, ledger={"url": url, "timeout_s": 1})
    assert main(["migrate", "--config", path]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: postgresql://app:***@127.0.0.1:1/ledger: ") and "hunter2" not in err


def test_no_ledger_section_is_an_error(tmp_path, capsys):
    assert main(["migrate", "--config", config_file(tmp_path)]) == 1
    assert "no ledger: section" in capsys.readouterr().err
