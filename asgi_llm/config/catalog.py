"""The model catalog: the one resolver from a client's model name to a served model.

Auth and the router both ask this catalog, so the allow-list and the route can never
disagree about which model a spelling means. The schema's duplicate check folds names
with the same `normalize_model_name`, so two names it accepts never resolve to one key.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from asgi_llm.config.model_facts import FACT_CAPABILITIES, facts_for

if TYPE_CHECKING:
    from asgi_llm.config.loader import Config
    from asgi_llm.config.schema import Deployment, ModelConfig

# Invisible characters a client may use to dodge a name match: refused outright.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")


@dataclass(frozen=True, slots=True)
class Abilities:
    """What a deployment is known to support: what it declares (which speaks of every
    capability), else what the packaged model table says (which speaks only of its own:
    vision and tools, not json_mode)."""

    has: frozenset[str]
    about: frozenset[str] | None = None  # None: every capability

    def lacks(self, needs: frozenset[str]) -> frozenset[str]:
        return (needs if self.about is None else needs & self.about) - self.has


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    aliases: tuple[str, ...]
    deployments: tuple[Deployment, ...]
    strategy: str
    # Precomputed for the router's filters, per deployment: what it is known to support (None:
    # nothing is known, it is taken to support what it is sent) and its context window (its
    # own, else the model table's); and the smallest of those windows.
    capabilities: tuple[Abilities | None, ...] = ()
    context_windows: tuple[int | None, ...] = ()
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
        abilities, windows = zip(*map(_known, model.deployments), strict=True)
        known = [w for w in windows if w is not None]
        return ModelEntry(
            model.name,
            model.aliases,
            model.deployments,
            model.strategy or default_strategy,
            abilities,
            windows,
            min(known) if known else None,
        )

    def resolve(self, name: str) -> ModelEntry | None:
        entry = self._by_name.get(name)  # fast path: the exact spelling
        if entry is not None:
            return entry
        key = normalize_model_name(name)
        return None if key is None else self._by_name.get(key)


def _known(deployment: Deployment) -> tuple[Abilities | None, int | None]:
    """A deployment's capabilities and context window: its own, else the model table's."""
    facts = facts_for(deployment.provider, deployment.model)
    if deployment.capabilities:
        abilities: Abilities | None = Abilities(frozenset(deployment.capabilities))
    elif facts is not None:
        abilities = Abilities(facts.capabilities, FACT_CAPABILITIES)
    else:
        abilities = None
    window = deployment.context_window
    if window is None and facts is not None:
        window = facts.context_window
    return abilities, window
