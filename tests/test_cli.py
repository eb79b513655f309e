import subprocess
import sys

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
