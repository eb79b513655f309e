"""The model catalog: the one resolver from a client's model name to a served model.

Auth and the router both ask this catalog, so the allow-list and the route can never
disagree about which model a spelling means. The schema's duplicate check folds names
with the same `normalize_model_name`, so two names it accepts never resolve to one key.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asgi_llm.config.loader import Config
    from asgi_llm.config.schema import Deployment, ModelConfig

# Invisible characters a client may use to dodge a name match: refused outright.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    aliases: tuple[str, ...]
    deployments: tuple[Deployment, ...]
    strategy: str
    # Precomputed for the router's filters: declared capabilities per deployment (None when a
    # deployment declares none), and the smallest declared context window.
    capabilities: tuple[frozenset[str] | None, ...] = ()
    min_context: int | None = None


def normalize_model_name(name: str) -> str | None:
    """Fold case, width and surrounding space; None for names no catalog can hold.

    NFKC, casefold, then NFKC again: casefold can leave a sequence NFKC composes
    (`\u00df\u0301` -> `ss\u0301` -> `s\u015b`), and the result must be a fixed point,
    or a client sending the folded spelling would miss the model.
    """
    if not name or len(name) > 256 or any(ch in _INVISIBLE for ch in name):
        return None
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).strip().casefold())
    return folded or None


class ModelCatalog:
    def __init__(self, config: Config) -> None:
        self._by_name: dict[str, ModelEntry] = {}
        self.entries: tuple[ModelEntry, ...] = tuple(
            self._entry(model, config.routing.strategy) for model in config.models
        )
        for entry in self.entries:
            for name in (entry.name, *entry.aliases):
                key = normalize_model_name(name)
                if key is not None:
                    self._by_name[key] = entry
        self.fallbacks: dict[str, tuple[str, ...]] = {}
        for source, targets in config.routing.fallbacks.items():
            source_entry = self.resolve(source)
            if source_entry is not None:
                self.fallbacks[source_entry.name] = tuple(
                    e.name for e in map(self.resolve, targets) if e is not None
                )
        self.deployments: dict[str, Deployment] = {
            d.id: d for entry in self.entries for d in entry.deployments
        }

    @staticmethod
    def _entry(model: ModelConfig, default_strategy: str) -> ModelEntry:
        windows = [d.context_window for d in model.deployments if d.context_window is not None]
        return ModelEntry(
            model.name,
            model.aliases,
            model.deployments,
            model.strategy or default_strategy,
            tuple(frozenset(d.capabilities) if d.capabilities else None for d in model.deployments),
            min(windows) if windows else None,
        )

    def resolve(self, name: str) -> ModelEntry | None:
        entry = self._by_name.get(name)  # fast path: the exact spelling
        if entry is not None:
            return entry
        key = normalize_model_name(name)
        return None if key is None else self._by_name.get(key)
