"""ConfigModel: the whole file, and the checks that span sections (names, fallbacks)."""

from __future__ import annotations

from pydantic import model_validator

from asgi_llm.config.catalog import normalize_model_name
from asgi_llm.config.schema.auth import Auth
from asgi_llm.config.schema.base import FieldError, Section
from asgi_llm.config.schema.cache import Cache
from asgi_llm.config.schema.deployments import ModelConfig
from asgi_llm.config.schema.limits import Limits
from asgi_llm.config.schema.observability import Ledger, Metrics, Tracing
from asgi_llm.config.schema.responses import Responses
from asgi_llm.config.schema.routing import Routing
from asgi_llm.config.schema.server import Admin, Reload, Server


class ConfigModel(Section):
    models: tuple[ModelConfig, ...] = ()
    routing: Routing = Routing()
    auth: Auth | None = None
    limits: Limits | None = None
    cache: Cache | None = None
    responses: Responses = Responses()
    metrics: Metrics | None = None
    ledger: Ledger | None = None
    tracing: Tracing | None = None
    reload: Reload = Reload()
    server: Server = Server()
    admin: Admin | None = None

    @model_validator(mode="after")
    def _check_names(self) -> ConfigModel:
        seen_ids: set[str] = set()
        names: dict[str, str] = {}  # normalized name or alias -> the model answering to it
        for i, model in enumerate(self.models):
            for j, deployment in enumerate(model.deployments):
                if deployment.id in seen_ids:
                    raise FieldError(
                        ("models", i, "deployments", j, "id"),
                        f"deployment id {deployment.id!r} is used twice",
                    )
                seen_ids.add(deployment.id)
            fields: list[tuple[str | int, ...]] = [
                ("name",),
                *(("aliases", j) for j in range(len(model.aliases))),
            ]
            for field, name in zip(fields, (model.name, *model.aliases), strict=True):
                # The catalog's own normaliser: two names accepted here never share a key there.
                key = normalize_model_name(name)
                if key is None:
                    raise FieldError(
                        ("models", i, *field),
                        f"{name!r} cannot be a model name "
                        "(empty, over 256 characters, or with an invisible character)",
                    )
                if key in names:
                    raise FieldError(
                        ("models", i, *field),
                        f"model name or alias {name!r} is used twice: model {names[key]!r} answers to it "
                        "(names compare without case, width or surrounding space)",
                    )
                names[key] = model.name
        for source, targets in self.routing.fallbacks.items():
            for loc, name in [(("routing", "fallbacks", source), source)] + [
                (("routing", "fallbacks", source, j), target) for j, target in enumerate(targets)
            ]:
                if normalize_model_name(name) not in names:
                    raise FieldError(loc, f"unknown model {name!r}")
        if self.cache is not None:
            for name in self.cache.semantic.thresholds.models:
                if normalize_model_name(name) not in names:
                    field = ("cache", "semantic", "thresholds", "models", name)
                    raise FieldError(field, f"unknown model {name!r}")
            judge = self.cache.semantic.judge
            if judge is not None and normalize_model_name(judge.model) not in names:
                raise FieldError(("cache", "semantic", "judge", "model"), f"unknown model {judge.model!r}")
        return self
