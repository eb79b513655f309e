"""The dashboard in headless Chromium against a real `asgi-llm serve` with a seeded ledger:
sign in, the overview's numbers against the ledger, drill-down, teams and keys (a minted key
calls the proxy and its request appears; rotated, the new one calls it; revoked, both are
401), a budget change, and
a tenant admin who sees its own tenant only. Screenshots of every page go to the run's
output folder (ASGI_LLM_SCREENSHOTS names another)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest

from tests.dashboard.browser import PageWatch, launch
from tests.dashboard.conftest import ROOT_KEY, TEAM_ADMIN_KEY, document
from tests.dashboard.seed import records, seed_sqlite
from tests.harness import ProxyServer
from tests.waiting import wait_until

SEEDED = 400
CHAT = {"model": "m1", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("ASGI_LLM_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("dashboard-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, redis_available):
    workdir = tmp_path_factory.mktemp("dashboard-proxy")
    ledger = workdir / "ledger.db"
    seed_sqlite(ledger, records(SEEDED))
    config = document(
        ledger={"url": f"sqlite:///{ledger}", "flush_interval_s": 0.1},
        limits={"storage": "memory://"},
    )
    config["models"].append(
        {"name": "m2", "deployments": [{"id": "m2-d", "provider": "mock", "model": "m2"}]}
    )
    config["auth"]["key_store"] = {
        "url": redis_available + "/5",
        "prefix": f"dash-{uuid.uuid4().hex[:8]}",
        "cache_ttl_s": 0,
    }
    with ProxyServer(config, workdir) as server:
        server.ledger = ledger
        yield server


def ledger_totals(path: Path, tenant: str | None = None) -> tuple[int, float]:
    with sqlite3.connect(path) as db:
        where, args = ("WHERE tenant = ?", (tenant,)) if tenant else ("", ())
        count, cost = db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM ledger_requests {where}", args
        ).fetchone()
    return count, cost


def ledger_spend_since_month_start(path: Path, tenant: str) -> float:
    now = datetime.now(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC).timestamp()
    with sqlite3.connect(path) as db:
        (cost,) = db.execute(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM ledger_requests WHERE tenant = ? AND ts >= ?",
            (tenant, start),
        ).fetchone()
    return float(cost)


def usd(value: float) -> str:
    """As the page shows dollars: 2 to 4 decimals."""
    text = f"{value:,.4f}"
    while text.endswith("0") and len(text.split(".")[1]) > 2:
        text = text[:-1]
    return "$" + text


def sign_in(browser, proxy, key: str, shots: Path | None = None):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    watch = PageWatch(page)
    page.goto(f"{proxy.root_url}/admin/ui/")
    page.wait_for_selector("input[name=credential]")
    if shots is not None:
        page.screenshot(path=str(shots / "signin.png"))
    page.fill("input[name=credential]", key)
    page.click("button[type=submit]")
    page.wait_for_selector("main[data-page=overview] [data-tile=requests]")
    return context, page, watch


def test_overview_matches_the_ledger_and_drills_down(browser, proxy, shots):
    context, page, watch = sign_in(browser, proxy, ROOT_KEY, shots)
    count, cost = ledger_totals(proxy.ledger)
    requests = page.get_attribute("[data-tile=requests]", "data-value")
    spend = page.get_attribute("[data-tile=spend]", "data-value")
    assert int(requests) == count and abs(float(spend) - cost) < 1e-5
    assert page.locator(".chart svg path.line").count() == 6
    page.screenshot(path=str(shots / "overview.png"), full_page=True)

    page.goto(f"{proxy.root_url}/admin/ui/#/usage/tenant")
    page.wait_for_selector("main[data-page=usage] table[data-table=usage] svg.spark")
    groups = page.locator("table[data-table=usage] tbody tr td:first-child").all_inner_texts()
    assert sorted(groups) == ["a", "b"]
    page.screenshot(path=str(shots / "teams-usage.png"), full_page=True)
    page.locator("table[data-table=usage] tbody tr", has_text="b").first.click()
    page.wait_for_selector("main[data-page=requests] table[data-table=requests] tbody tr.clickable")
    tenants = set(page.locator("table[data-table=requests] tbody tr td:nth-child(4)").all_inner_texts())
    assert tenants == {"b"}
    page.screenshot(path=str(shots / "requests.png"), full_page=True)
    page.locator("table[data-table=requests] tbody tr.clickable").first.click()
    page.wait_for_selector("main[data-page=request] table[data-record]")
    assert page.locator("table[data-table=attempts]").count() == 1
    page.screenshot(path=str(shots / "request.png"), full_page=True)

    for route, selector, name in [
        ("usage/model", "table[data-table=usage]", "models-usage"),
        ("usage/key", "table[data-table=usage] svg.spark", "keys-usage"),
        ("deployments", "table[data-table=deployments] .badge.bad:has-text('bad_gateway')", "deployments"),
        ("config", "pre[data-config]", "config"),
    ]:
        page.goto(f"{proxy.root_url}/admin/ui/#/{route}")
        page.wait_for_selector(selector)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert ROOT_KEY not in page.content()
    page.click("[data-reload]")
    page.wait_for_selector("[data-reload-status] .notice")
    assert watch.problems == []
    context.close()


def test_teams_and_keys_through_the_page(browser, proxy, shots):
    context, page, watch = sign_in(browser, proxy, ROOT_KEY)
    page.on("dialog", lambda dialog: dialog.accept())
    team = f"t{uuid.uuid4().hex[:6]}"
    admin = {"authorization": f"Bearer {ROOT_KEY}"}
    created = httpx2.post(
        f"{proxy.root_url}/admin/teams", json={"id": "b", "budget_period": "month"}, headers=admin
    )
    assert created.status_code == 201, created.text
    page.goto(f"{proxy.root_url}/admin/ui/#/teams")
    page.wait_for_selector("table[data-table=teams] td:text-is('b')")
    row = page.locator("table[data-table=teams] tbody tr").filter(
        has=page.locator("td:first-child:text-is('b')")
    )
    spent = row.locator("td:nth-child(4)").inner_text()  # Team, Budget, Period, Spent this period
    assert spent == usd(ledger_spend_since_month_start(proxy.ledger, "b"))
    form = page.locator("form[data-create-team]")
    form.locator("input[name=id]").fill(team)
    form.locator("input[name=budget_usd]").fill("25")
    form.locator("input[name=rpm]").fill("600")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(f"table[data-table=teams] td:text-is('{team}')")
    page.locator("table[data-table=teams] tr", has_text=team).click()
    edit = page.locator(f"form[data-edit-team='{team}']")
    edit.locator("input[name=budget_usd]").fill("40")
    edit.locator("button[type=submit]").click()
    page.wait_for_selector("[data-status] .notice")
    page.screenshot(path=str(shots / "teams.png"), full_page=True)
    stored = httpx2.get(f"{proxy.root_url}/admin/teams/{team}", headers=admin).json()
    assert stored["budget_usd"] == 40 and stored["rpm"] == 600

    key_id = f"k-{team}"
    page.goto(f"{proxy.root_url}/admin/ui/#/keys")
    mint = page.locator("form[data-mint]")
    mint.locator("input[name=id]").fill(key_id)
    mint.locator("input[name=roles]").fill("user")
    mint.locator("input[name=tenant]").fill(team)
    mint.locator("button[type=submit]").click()
    key = page.locator(f"[data-new-key='{key_id}']").inner_text(timeout=10_000).strip()
    assert key.startswith("sk-")
    page.screenshot(path=str(shots / "keys.png"), full_page=True)
    page.reload()  # shown once: gone from the page after
    page.wait_for_selector(f"table[data-table=keys] td:text-is('{key_id}')")
    assert page.locator("[data-new-key]").count() == 0 and key not in page.content()

    answer = httpx2.post(
        f"{proxy.base_url}/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200, answer.text

    page.goto(f"{proxy.root_url}/admin/ui/#/requests?key={key_id}")

    def logged() -> bool:
        page.reload()
        page.wait_for_selector("main[data-page=requests] table[data-table=requests]")
        return page.locator("table[data-table=requests] tbody tr.clickable").count() == 1

    wait_until(logged, timeout=15, interval=0.3, message="the minted key's request in the log")
    page.goto(f"{proxy.root_url}/admin/ui/#/keys")
    page.click(f"[data-rotate='{key_id}']")
    rotated = page.locator(f"[data-new-key='{key_id}']").inner_text(timeout=10_000).strip()
    assert rotated.startswith("sk-") and rotated != key
    answer = httpx2.post(
        f"{proxy.base_url}/chat/completions", json=CHAT, headers={"authorization": f"Bearer {rotated}"}
    )
    assert answer.status_code == 200, answer.text
    page.click(f"[data-revoke='{key_id}']")
    page.wait_for_selector("[data-status] .notice")
    refused = httpx2.post(
        f"{proxy.base_url}/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
    )
    assert refused.status_code == 401
    assert watch.problems == []
    context.close()


def test_a_tenant_admin_sees_its_tenant_only(browser, proxy, shots):
    context, page, watch = sign_in(browser, proxy, TEAM_ADMIN_KEY)
    count, cost = ledger_totals(proxy.ledger, "a")
    assert int(page.get_attribute("[data-tile=requests]", "data-value")) == count
    page.goto(f"{proxy.root_url}/admin/ui/#/usage/tenant")
    page.wait_for_selector("table[data-table=usage] tbody tr")
    assert page.locator("table[data-table=usage] tbody tr td:first-child").all_inner_texts() == ["a"]
    page.goto(f"{proxy.root_url}/admin/ui/#/requests?tenant=b")
    page.wait_for_selector("table[data-table=requests]")
    tenants = set(
        page.locator("table[data-table=requests] tbody tr.clickable td:nth-child(4)").all_inner_texts()
    )
    assert tenants <= {"a"}
    page.screenshot(path=str(shots / "tenant-admin.png"), full_page=True)
    assert watch.problems == []
    context.close()
