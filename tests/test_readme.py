"""The README's code blocks: the SDK snippet runs against a real server; the YAML loads."""

import re
from pathlib import Path

import openai

from asgi_llm import Config
from tests.harness import ProxyServer

README = (Path(__file__).parents[1] / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.S | re.M)  # indented = fragment


def test_readme_sdk_snippet_runs(tmp_path, capsys):
    (snippet,) = blocks("python")
    with ProxyServer(None, tmp_path) as server:
        code = snippet.replace("http://127.0.0.1:8000/v1", server.base_url)
        exec(compile(code, "README.md", "exec"), {"OpenAI": openai.OpenAI})
    assert capsys.readouterr().out == "This is mock-1 answering: Hello"


def test_readme_config_is_valid():
    (config,) = blocks("yaml")
    path_free = Config.from_dict(__import__("yaml").safe_load(config), environ={"OPENAI_API_KEY": "sk-x"})
    assert path_free.models[0].deployments[1].provider == "openai-compatible"


def test_readme_example_key_is_the_plaintext_of_its_digest():
    from asgi_llm.auth.keys import hash_key

    (plain,) = re.findall(r"The key below is `([^`]+)`", README)
    (config,) = blocks("yaml")
    (digest,) = re.findall(r'key_sha256: "(sha256:[0-9a-f]+)"', config)
    assert hash_key(plain) == digest
    assert f"echo -n {plain} | asgi-llm hash-key" in README


def test_make_run_installs_no_extra_unless_asked():
    import subprocess

    root = Path(__file__).parents[1]

    def plan(*args: str) -> str:
        return subprocess.run(
            ["make", "-n", "-B", "run", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout

    default = plan()
    assert "pip install -q -e '.'" in default and "torch" not in default and "[all" not in default
    semantic = plan("EXTRAS=redis,semantic")
    assert "torch==2.13.0" in semantic and "pip install -q -e '.[redis,semantic]'" in semantic
