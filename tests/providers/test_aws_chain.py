"""Bedrock's credentials from the rest of AWS's default chain (asgi_llm/providers/aws_chain.py):
botocore's own resolver, run in a worker thread once however many requests wait, refreshed in
the background before expiry; and a profile from a shared credentials file through a real
`asgi-llm serve`, signed so the fake Bedrock's SigV4 check accepts it."""

from __future__ import annotations

import asyncio
import datetime
import threading

import openai
import pytest
from botocore.credentials import Credentials as BotoCredentials
from botocore.credentials import RefreshableCredentials

from asgi_llm.providers.aws import AwsCredentials
from asgi_llm.providers.aws_chain import DefaultChain
from tests.fakes.bedrock import Credentials, FakeBedrock
from tests.harness import ProxyServer

USER = [{"role": "user", "content": "Say hello"}]
PROFILE_KEY = Credentials("AKIAPROFILEFAKE00003", "profile-fake-secret-access-key")


class Resolver:
    """botocore's resolver as a test controls it: counts calls and the threads they ran on."""

    def __init__(self, source):
        self.source = source
        self.calls = 0
        self.threads: set[str] = set()

    def __call__(self):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        return self.source


async def test_the_chain_is_resolved_once_off_the_event_loop():
    resolver = Resolver(BotoCredentials("AKIASTATICFAKE000001", "static-secret"))
    chain = DefaultChain(resolver)
    found = await asyncio.gather(*(chain.get() for _ in range(20)))
    assert set(found) == {AwsCredentials("AKIASTATICFAKE000001", "static-secret")}
    assert resolver.calls == 1 and threading.current_thread().name not in resolver.threads
    assert await chain.get() == found[0] and resolver.calls == 1
    await chain.aclose()


async def test_refreshable_credentials_are_refreshed_in_the_background_then_waited_for_at_the_end():
    """botocore's clock is the test's: within the advisory window (15 minutes before expiry) a
    request signs with the current credentials while one refresh runs in a worker thread;
    within the last minute requests wait for the new ones."""
    now = [datetime.datetime.now(datetime.UTC)]
    issued: list[str] = []

    def refresh() -> dict:
        issued.append(threading.current_thread().name)
        n = len(issued)
        expiry = now[0] + datetime.timedelta(hours=1)
        return {
            "access_key": f"ASIAROLEFAKE0000000{n}",
            "secret_key": f"secret-{n}",
            "token": f"token-{n}",
            "expiry_time": expiry.isoformat(),
        }

    first = refresh()
    source = RefreshableCredentials(
        first["access_key"],
        first["secret_key"],
        first["token"],
        now[0] + datetime.timedelta(hours=1),
        refresh,
        "assume-role",
        time_fetcher=lambda: now[0],
    )
    chain = DefaultChain(Resolver(source))
    one = AwsCredentials("ASIAROLEFAKE00000001", "secret-1", "token-1")
    assert await chain.get() == one
    now[0] += datetime.timedelta(minutes=48)  # 12 minutes left: advisory
    assert await chain.get() == one  # this request does not wait; a refresh starts
    await asyncio.wait_for(asyncio.shield(chain._task), 5)  # noqa: SLF001 - the background refresh
    two = AwsCredentials("ASIAROLEFAKE00000002", "secret-2", "token-2")
    assert await chain.get() == two and len(issued) == 2
    now[0] += datetime.timedelta(minutes=59, seconds=30)  # 30 s left: every request waits
    three = await asyncio.gather(chain.get(), chain.get())
    assert three == [AwsCredentials("ASIAROLEFAKE00000003", "secret-3", "token-3")] * 2
    assert len(issued) == 3 and threading.current_thread().name not in issued[1:]
    await chain.aclose()


async def test_a_chain_that_finds_nothing_is_not_asked_on_every_request():
    resolver = Resolver(None)
    chain = DefaultChain(resolver)
    assert await chain.get() is None and await chain.get() is None
    assert resolver.calls == 1  # asked again only after RETRY_AFTER_FAILURE_S
    await chain.aclose()


@pytest.fixture(scope="module")
def aws():
    with FakeBedrock("aws-chain") as fake:
        fake.keys[PROFILE_KEY.access_key_id] = PROFILE_KEY
        yield fake


def test_a_profile_from_the_shared_credentials_file_through_serve(aws, tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = AKIAWRONGDEFAULT0004\naws_secret_access_key = nope\n\n"
        f"[proxy]\naws_access_key_id = {PROFILE_KEY.access_key_id}\n"
        f"aws_secret_access_key = {PROFILE_KEY.secret_access_key}\n"
    )
    (tmp_path / "config").write_text("")
    deployment = {
        "id": "from-profile",
        "provider": "bedrock",
        "model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "region": "us-east-1",
        "base_url": aws.base_url,
    }
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_PROFILE": "proxy",
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance role to ask on a test machine
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SESSION_TOKEN": "",
    }
    config = {"models": [{"name": "claude", "deployments": [deployment]}], "routing": {"retries": 0}}
    with ProxyServer(config, tmp_path, env=env) as proxy:
        with openai.OpenAI(base_url=proxy.base_url, api_key="k", max_retries=0, timeout=20) as sdk:
            completion = sdk.chat.completions.create(model="claude", messages=USER)
            assert completion.choices[0].message.content
            stream = sdk.chat.completions.create(model="claude", messages=USER, stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert aws.refused == []
    assert {PROFILE_KEY.access_key_id in r.headers["authorization"] for r in aws.requests} == {True}


async def test_a_profile_that_is_not_there_fails_the_deployment_saying_why(
    aws, tmp_path, monkeypatch, asgi_client
):
    from tests.conftest import assert_error_shape

    (tmp_path / "credentials").write_text("")
    for name, value in {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "credentials"),
        "AWS_PROFILE": "absent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    deployment = {
        "id": "from-nowhere",
        "provider": "bedrock",
        "model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "region": "us-east-1",
        "base_url": aws.base_url,
    }
    aws.reset()
    client = asgi_client({"models": [{"name": "claude", "deployments": [deployment]}]})
    response = await client.post("/v1/chat/completions", json={"model": "claude", "messages": USER})
    error = assert_error_shape(response, 502, "upstream_misconfigured")  # every attempt says why
    assert "ProfileNotFound" in error["message"] and "from-nowhere" in error["message"]
    assert aws.requests == []
