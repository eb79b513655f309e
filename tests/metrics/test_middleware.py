"""MetricsMiddleware in process: what each kind of request leaves in the Prometheus series."""

from __future__ import annotations

import asyncio
import os
import random
import string

import pytest
from prometheus_client import CollectorRegistry

from asgi_llm import Config, MetricsMiddleware
from asgi_llm.auth.keys import hash_key
from asgi_llm.metrics import BaseExporter, RequestRecord
from tests.conftest import mock_model
from tests.metrics.conftest import call, chat, samples, scrape, value

PROM = {"prometheus": {"path": "/metrics"}}


def config(**sections) -> Config:
    data = {"models": [mock_model("m1")], "metrics": PROM, **sections}
    return Config.from_dict(data)


def layer_of(app, cls):
    while not isinstance(app, cls):
        app = app.app
    return app


async def test_a_request_is_counted_with_its_labels_tokens_cost_and_latency(make_app):
    cfg = Config.from_dict(
        {
            "models": [
                {
                    "name": "m1",
                    "aliases": ["one"],
                    "deployments": [
                        {
                            "id": "d1",
                            "provider": "mock",
                            "model": "m1",
                            "cost": {"input_per_mtok": 1_000_000, "output_per_mtok": 2_000_000},
                        }
                    ],
                }
            ],
            "metrics": PROM,
        }
    )
    app = make_app(cfg)
    assert (await call(app, "/v1/chat/completions", chat("one")))[0] == 200
    text = await scrape(app)
    assert (
        value(
            text,
            "asgi_llm_requests_total",
            endpoint="chat",
            model="m1",
            deployment="d1",
            status="2xx",
            cache="none",
        )
        == 1
    )
    prompt = value(text, "asgi_llm_prompt_tokens_total", model="m1", deployment="d1")
    completion = value(text, "asgi_llm_completion_tokens_total", model="m1", deployment="d1")
    assert prompt > 0 and completion > 0
    assert value(text, "asgi_llm_cost_usd_total", model="m1") == pytest.approx(prompt + 2 * completion)
    # The kinds split the same tokens (the mock says no cache and no reasoning).
    assert value(text, "asgi_llm_tokens_total", model="m1", deployment="d1", kind="input") == prompt
    assert value(text, "asgi_llm_tokens_total", model="m1", deployment="d1", kind="output") == completion
    assert value(text, "asgi_llm_tokens_total", model="m1") == prompt + completion
    assert value(text, "asgi_llm_request_duration_seconds_count", model="m1", deployment="d1") == 1
    assert value(text, "asgi_llm_upstream_duration_seconds_count", model="m1") == 1
    assert value(text, "asgi_llm_proxy_overhead_seconds_count", endpoint="chat") == 1
    assert value(text, "asgi_llm_time_to_first_token_seconds_count", model="m1") == 0  # not a stream
    assert value(text, "asgi_llm_requests_in_flight") == 0


async def test_streams_record_time_to_first_token(make_app):
    app = make_app(config())
    status, body = await call(app, "/v1/chat/completions", chat(stream=True))
    assert status == 200 and body.endswith(b"data: [DONE]\n\n")
    text = await scrape(app)
    assert value(text, "asgi_llm_time_to_first_token_seconds_count", model="m1") == 1
    total = value(text, "asgi_llm_request_duration_seconds_sum", model="m1")
    ttft = value(text, "asgi_llm_time_to_first_token_seconds_sum", model="m1")
    assert 0 < ttft <= total


async def test_errors_by_type_and_unknown_models_as_other(make_app):
    app = make_app(config())
    assert (await call(app, "/v1/chat/completions", chat("no-such-model")))[0] == 404
    assert (await call(app, "/v1/chat/completions", {"model": "m1"}))[0] == 400
    text = await scrape(app)
    assert (
        value(
            text, "asgi_llm_errors_total", model="other", type="invalid_request_error", code="model_not_found"
        )
        == 1
    )
    assert value(text, "asgi_llm_requests_total", model="other", status="4xx") == 1
    assert value(text, "asgi_llm_errors_total", model="m1", type="invalid_request_error") == 1
    assert "no-such-model" not in text


async def test_rate_limit_rejections_are_counted(make_app):
    app = make_app(config(limits={"rules": [{"per": "global", "requests": "1/minute"}]}))
    assert (await call(app, "/v1/chat/completions", chat()))[0] == 200
    assert (await call(app, "/v1/chat/completions", chat()))[0] == 429
    text = await scrape(app)
    assert value(text, "asgi_llm_ratelimit_rejections_total", model="m1", reason="rate_limit_exceeded") == 1
    assert value(text, "asgi_llm_requests_total", model="m1", status="4xx") == 1


async def test_cache_hits_by_kind(make_app):
    app = make_app(config(cache={"backend": "memory://"}))
    for _ in range(3):
        assert (await call(app, "/v1/chat/completions", chat()))[0] == 200
    text = await scrape(app)
    assert value(text, "asgi_llm_cache_hits_total", model="m1", kind="exact") == 2
    assert value(text, "asgi_llm_requests_total", cache="hit") == 2
    assert value(text, "asgi_llm_requests_total", cache="miss") == 1


async def test_failovers_and_the_degraded_limiter_backend(make_app):
    refused = {
        "id": "dead",
        "provider": "openai-compatible",
        "model": "x",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": "k",
    }
    cfg = Config.from_dict(
        {
            "models": [
                {"name": "m1", "deployments": [refused, {"id": "live", "provider": "mock", "model": "m1"}]}
            ],
            "limits": {
                "storage": "redis://127.0.0.1:9/0",
                "timeout_s": 0.2,
                "rules": [{"per": "global", "requests": "100/minute"}],
            },
            "metrics": PROM,
        }
    )
    app = make_app(cfg)
    assert (await call(app, "/v1/chat/completions", chat()))[0] == 200
    text = await scrape(app)
    assert value(text, "asgi_llm_failovers_total", model="m1") == 1
    assert value(text, "asgi_llm_requests_total", deployment="live", status="2xx") == 1
    assert value(text, "asgi_llm_backend_degraded", backend="ratelimit") == 1
    assert value(text, "asgi_llm_deployment_cooling", deployment="dead") == 0


async def test_no_metrics_section_means_no_metrics_route(make_app):
    app = make_app(Config.from_dict({"models": [mock_model("m1")]}))
    assert (await call(app, "/v1/chat/completions", chat()))[0] == 200
    assert (await call(app, "/metrics", method="GET"))[0] == 404


async def test_the_route_follows_the_config_path_and_answers_get_only(make_app):
    app = make_app(config(metrics={"prometheus": {"path": "/internal/prom"}}))
    assert (await call(app, "/internal/prom", method="GET"))[0] == 200
    assert (await call(app, "/internal/prom", method="POST"))[0] == 405
    assert (await call(app, "/metrics", method="GET"))[0] == 404


async def test_cardinality_is_bounded_whatever_clients_send(make_app):
    """THREATS H13: 10k random model names, keys and request ids add no series."""
    cfg = Config.from_dict(
        {
            "models": [mock_model("m1")],
            "metrics": PROM,
            "auth": {
                "api_keys": [
                    {
                        "id": "alice",
                        "key_sha256": hash_key("sk-alice-0123456789"),
                        "roles": ["user"],
                        "tenant": "team-a",
                    }
                ],
                "roles": {"user": {"models": ["*"], "endpoints": ["*"]}},
            },
        }
    )
    app = make_app(cfg)
    rng = random.Random(7)

    def junk() -> str:
        return "".join(rng.choices(string.ascii_letters + string.digits + "-_.:|#", k=24))

    good = ((b"authorization", b"Bearer sk-alice-0123456789"),)

    async def burst(n: int) -> set[str]:
        sent = set()
        for i in range(n):
            name, rid = junk(), junk().replace(":", "").replace("|", "").replace("#", "")
            sent.update((name, rid))
            if i % 2:  # a valid key with a random model and request id
                headers = (*good, (b"x-request-id", rid.encode()))
            else:  # a random key
                headers = ((b"authorization", f"Bearer sk-{rid}".encode()),)
            await call(app, "/v1/chat/completions", chat(name), headers=headers)
        return sent

    await burst(200)
    before = samples(await scrape(app))
    sent = await burst(10_000)
    after_text = await scrape(app)
    after = samples(after_text)
    assert set(after) == set(before), set(after) ^ set(before)
    assert value(after_text, "asgi_llm_requests_total", model="other") == 10_200
    assert not [s for s in sent if s in after_text][:3]
    assert "alice" not in after_text and "team-a" not in after_text


async def test_label_values_are_capped_even_for_served_models(make_app):
    models = [mock_model(f"m{i}") for i in range(5)]
    app = make_app(Config.from_dict({"models": models, "metrics": {**PROM, "max_label_values": 3}}))
    for i in range(5):
        assert (await call(app, "/v1/chat/completions", chat(f"m{i}")))[0] == 200
    text = await scrape(app)
    models_seen = {
        dict(labels)["model"] for (name, labels) in samples(text) if name == "asgi_llm_requests_total"
    }
    assert models_seen == {"m0", "m1", "m2", "other"}


class Collect(BaseExporter):
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []
        self.started = 0
        self.reloads: list[bool] = []

    def request_started(self) -> None:
        self.started += 1

    def record(self, request: RequestRecord) -> None:
        self.records.append(request)

    def config_reloaded(self, ok: bool) -> None:
        self.reloads.append(ok)


class Broken(BaseExporter):
    def record(self, request: RequestRecord) -> None:
        raise RuntimeError("sink down")


async def test_custom_exporters_get_each_record_and_a_broken_one_fails_nothing(make_app, no_secrets_in_logs):
    sink = Collect()
    cfg = Config.from_dict({"models": [mock_model("m1")]})  # no metrics section: custom only
    inner = make_app(cfg)
    app = MetricsMiddleware(inner, config=cfg, exporters=[Broken(), sink])
    assert (await call(app, "/v1/chat/completions", chat())).__getitem__(0) == 200
    assert (await call(app, "/v1/chat/completions", chat("nope")))[0] == 404
    assert sink.started == 2
    ok, missing = sink.records
    assert (ok.endpoint, ok.model, ok.deployment, ok.status, ok.status_class) == (
        "chat",
        "m1",
        "m1-d",
        200,
        "2xx",
    )
    assert ok.completion_tokens and ok.total_s > 0 and ok.request_id
    assert (missing.model, missing.status, missing.error_code) == ("other", 404, "model_not_found")
    assert app.failures == 2
    assert any("Broken" in line for line in no_secrets_in_logs.lines)


async def test_mounted_inside_another_exchange_it_still_sees_the_error(make_app):
    """Further in than the layer running the exchange, the error is caught on its way out."""
    sink = Collect()
    cfg = Config.from_dict(
        {"models": [mock_model("m1")], "limits": {"rules": [{"per": "global", "requests": "1/minute"}]}}
    )
    from asgi_llm import ProviderApp, RateLimitMiddleware, RouterMiddleware

    app = RateLimitMiddleware(
        MetricsMiddleware(
            RouterMiddleware(ProviderApp(config=cfg), config=cfg), config=cfg, exporters=[sink]
        ),
        config=cfg,
    )
    assert (await call(app, "/v1/chat/completions", chat("nope")))[0] == 404
    assert sink.records[-1].status == 404 and sink.records[-1].error_type == "invalid_request_error"


async def test_reloads_are_counted(make_app, tmp_path):
    path = tmp_path / "proxy.json"
    path.write_text(
        '{"models": [{"name": "m1", "deployments": [{"id": "d", "provider": "mock", '
        '"model": "m1"}]}], "metrics": {"prometheus": {}}}'
    )
    app = make_app(Config.from_file(path))
    manager = layer_of(app, MetricsMiddleware).configs
    assert manager.reload().ok
    path.write_text("models: [")
    assert not manager.reload().ok
    text = await scrape(app)
    assert value(text, "asgi_llm_config_reloads_total", result="ok") == 1
    assert value(text, "asgi_llm_config_reloads_total", result="failed") == 1


async def test_a_users_registry_holds_the_series_and_the_default_one_stays_clean(make_app):
    from prometheus_client import REGISTRY

    registry = CollectorRegistry()
    cfg = config()
    app = MetricsMiddleware(make_app(cfg), config=cfg, registry=registry)
    assert (await call(app, "/v1/chat/completions", chat()))[0] == 200
    assert (
        registry.get_sample_value(
            "asgi_llm_requests_total",
            {"endpoint": "chat", "model": "m1", "deployment": "m1-d", "status": "2xx", "cache": "none"},
        )
        == 1
    )
    assert (
        REGISTRY.get_sample_value(
            "asgi_llm_requests_total",
            {"endpoint": "chat", "model": "m1", "deployment": "m1-d", "status": "2xx", "cache": "none"},
        )
        is None
    )


async def test_mounted_in_a_starlette_app_it_counts_llm_routes_only(make_app):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    async def completions(request):
        llm = request.state.llm  # the context the middleware's exchange put there
        return JSONResponse({"id": "x", "model": llm.model, "choices": []})

    async def hello(request):
        return PlainTextResponse("hi")

    cfg = config()
    app = Starlette(
        routes=[Route("/v1/chat/completions", completions, methods=["POST"]), Route("/hello", hello)],
        middleware=[Middleware(MetricsMiddleware, config=cfg)],
    )
    assert (await call(app, "/v1/chat/completions", chat()))[0] == 200
    assert (await call(app, "/hello", method="GET")) == (200, b"hi")
    text = await scrape(app)
    assert value(text, "asgi_llm_requests_total", endpoint="chat", status="2xx") == 1
    assert value(text, "asgi_llm_requests_total") == 1
    assert "hello" not in text


async def test_disconnects_are_counted(make_app):
    sink = Collect()
    cfg = Config.from_dict({"models": [mock_model("m1", latency_ms=2000)]})
    app = MetricsMiddleware(make_app(cfg), config=cfg, exporters=[sink])
    gone = asyncio.Event()
    listening = asyncio.Event()  # the body was read; the stack now watches for a disconnect
    pending = [
        {
            "type": "http.request",
            "body": b'{"model":"m1","messages":[{"role":"user","content":"x"}]}',
            "more_body": False,
        }
    ]

    async def receive():
        if pending:
            return pending.pop()
        listening.set()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        pass

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
    }
    task = asyncio.ensure_future(app(scope, receive, send))
    await asyncio.wait_for(listening.wait(), 5)
    gone.set()
    await asyncio.wait_for(task, 5)
    (record,) = sink.records
    assert record.disconnected and record.status_class == "disconnected"


def test_prometheus_client_is_not_imported_without_a_prometheus_section():
    import subprocess
    import sys

    code = (
        "import sys, asgi_llm; from asgi_llm import Config, build_app;"
        "build_app(Config.from_dict({'models': []}));"
        "print('prometheus_client' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
