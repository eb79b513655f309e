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
