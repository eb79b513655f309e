import io
import subprocess
import sys

import pytest

from asgi_llm.auth.keys import hash_key
from asgi_llm.cli import main


def test_hash_key_prints_the_config_form(capsys):
    assert main(["hash-key", "sk-alice"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("sha256:") and len(out) == 7 + 64


def test_check_config_ok_and_summary(tmp_path, capsys):
    path = tmp_path / "proxy.yaml"
    path.write_text("models:\n  - name: m\n    deployments:\n      - {id: d, provider: mock, model: m}\n")
    assert main(["check-config", str(path)]) == 0
    assert "1 model(s) (m)" in capsys.readouterr().out


def test_check_config_summary_names_the_ledger_backend_never_its_url(tmp_path, capsys):
    path = tmp_path / "proxy.yaml"
    path.write_text(
        "models:\n  - name: m\n    deployments:\n      - {id: d, provider: mock, model: m}\n"
        "ledger: {url: 'postgresql://asgi:hunter2@db.internal:5432/asgi'}\n"
        "admin: {ui: true}\n"
    )
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ledger: postgresql" in out and "dashboard: /admin/ui" in out
    assert "hunter2" not in out and "db.internal" not in out


def test_check_config_error_names_file_and_field(tmp_path, capsys):
    path = tmp_path / "proxy.yaml"
    path.write_text(
        "models:\n"
        "  - name: a\n    deployments:\n      - {id: a, provider: mock, model: a}\n"
        "  - name: b\n    deployments:\n      - {id: b, provider: mock, model: b}\n"
        "  - name: c\n    deployments:\n"
        "      - {id: c, provider: openai-compatible, model: c, base_url: 'not a url'}\n"
    )
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err
    assert "models[2].deployments[0].base_url" in err
    assert "http" in err


def test_serve_refuses_public_bind_without_auth(capsys):
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 1
    assert "no auth" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "asgi_llm", "hash-key", "x"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("sha256:")


def test_serve_with_an_invalid_config_exits_1_naming_file_and_field(tmp_path):
    """THREATS G6: a real `asgi-llm serve` process refuses to start on a bad config."""
    path = tmp_path / "proxy.yaml"
    path.write_text(
        "models:\n  - name: a\n    deployments:\n      - {id: a, provider: mock, model: a, bogus: 1}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "asgi_llm", "serve", "--config", str(path), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert str(path) in result.stderr and "models[0].deployments[0].bogus" in result.stderr


@pytest.mark.parametrize("argv", [["hash-key"], ["hash-key", "-"]])
def test_hash_key_reads_the_key_from_stdin(argv, monkeypatch, capsys):
    """A key on the command line ends up in shell history: `-` or nothing reads stdin."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("sk-alice\n"))
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == hash_key("sk-alice")


def test_hash_key_strips_one_newline_only(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("sk-alice \n\n"))
    assert main(["hash-key", "-"]) == 0
    assert capsys.readouterr().out.strip() == hash_key("sk-alice \n")


@pytest.mark.parametrize("given", ["", "\n", "\r\n"])
def test_hash_key_refuses_an_empty_key(given, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(given))
    assert main(["hash-key"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "empty" in captured.err


def test_hash_key_from_a_pipe_in_a_real_process():
    result = subprocess.run(
        [sys.executable, "-m", "asgi_llm", "hash-key"],
        input="sk-bob\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == hash_key("sk-bob")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("proxy.yaml", ""),
        ("proxy.yaml", "# nothing here yet\n"),
        ("proxy.yaml", "---\n"),
        ("proxy.toml", "\n"),
    ],
)
def test_check_config_refuses_an_empty_file(tmp_path, capsys, name, content):
    path = tmp_path / name
    path.write_text(content)
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "empty" in err


def test_check_config_accepts_an_explicitly_empty_mapping(tmp_path, capsys):
    path = tmp_path / "proxy.yaml"
    path.write_text("{}\n")
    assert main(["check-config", str(path)]) == 0
    assert "0 model(s)" in capsys.readouterr().out


ROLES_YAML = """\
models:
  - name: chat-model
    deployments:
      - {{id: d, provider: mock, model: m}}
auth:
  roles:
    user: {{models: {models}, endpoints: {endpoints}}}
"""


def test_check_config_refuses_an_unknown_endpoint_grant(tmp_path, capsys):
    path = tmp_path / "proxy.yaml"
    path.write_text(ROLES_YAML.format(models='["chat-model"]', endpoints="[chat, model, embedding]"))
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "auth.roles.user.endpoints[1]: unknown endpoint 'model'" in err


def test_check_config_warns_about_a_model_pattern_that_matches_nothing(tmp_path, capsys):
    path = tmp_path / "proxy.yaml"
    path.write_text(ROLES_YAML.format(models='["chta", "chat-*"]', endpoints="[chat]"))
    assert main(["check-config", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ok: ")
    assert (
        f"warning: {path}: auth.roles.user.models[0]: 'chta' matches no model name or alias" in captured.err
    )
    assert "models[1]" not in captured.err


def test_check_config_refuses_a_malformed_redis_url_naming_the_field(tmp_path, capsys):
    path = tmp_path / "proxy.yaml"
    path.write_text(
        "models:\n  - name: m\n    deployments:\n      - {id: d, provider: mock, model: m}\n"
        'cache:\n  backend: "redis://127.0.0.1:abc/1"\n'
    )
    assert main(["check-config", str(path)]) == 1
    assert f"{path}: cache.backend: invalid port 'abc'" in capsys.readouterr().err
