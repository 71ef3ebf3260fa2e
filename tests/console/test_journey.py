"""The console's journey in a real browser (Playwright driving Debian's Chromium), on SQLite and PostgreSQL,
against a real `switchman serve` on a database of its own (ADR 0026).

Chromium is `/usr/bin/chromium` (Debian's `chromium` package; `.ci/run` installs it when missing): without
it the journey is skipped with the reason, and fails when `CI` is set, like PostgreSQL. With
`SWITCHMAN_CONSOLE_SCREENSHOTS=<folder>` the journey saves a screenshot of each main view there (the README's
are taken this way into docs/console/).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import empty_database
from tests.unleash_oss import free_port

CHROMIUM = Path("/usr/bin/chromium")
ADMIN = "*:*.journey-admin-secret-0123456789"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database(request.param, tmp_path, prefix="switchman_journey") as url:
        yield url


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`switchman serve` (in-process worker) on the journey's database; its base URL."""
    if not CHROMIUM.exists():
        reason = "Debian's chromium is not installed (/usr/bin/chromium): apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHMAN_")}
    env.update(SWITCHMAN_DATABASE_URL=database_url, SWITCHMAN_INIT_ADMIN_API_TOKENS=ADMIN,
               SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND="0", SWITCHMAN_WORKER_POLL_INTERVAL_SECONDS="0.2")  # fmt: skip
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "switchman", "serve", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    assert "Traceback" not in (tmp_path / "serve.log").read_text(), (tmp_path / "serve.log").read_text()[
        -3000:
    ]


def _api(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": ADMIN}, timeout=10)


def test_the_console_journey(server: str) -> None:
    shots = os.environ.get("SWITCHMAN_CONSOLE_SCREENSHOTS")
    with _api(server) as api:
        _journey(server, api, shots)


def _journey(server: str, api: httpx.Client, shots: str | None) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    def shot(page: Page, name: str) -> None:
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=True)

    api.post("/api/admin/projects/default/features", json={"name": "checkout-v2"}).raise_for_status()
    api.post("/api/admin/projects/default/features/checkout-v2/environments/production/on").raise_for_status()
    bot = api.post(
        "/api/admin/service-account", json={"username": "bot", "name": "Bot", "rootRole": 2}
    ).json()
    viewer = api.post(
        "/api/admin/service-account", json={"username": "eyes", "name": "Eyes", "rootRole": 3}
    ).json()
    viewer_token = api.post(
        f"/api/admin/service-account/{viewer['id']}/token",
        json={"description": "console", "expiresAt": "2099-01-01T00:00:00Z"},
    ).json()["secret"]
    dialogs: list[str] = []

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = chromium.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

            # Sign in.
            page.goto(f"{server}/")
            expect(page).to_have_url(f"{server}/ui/sign-in")
            shot(page, "sign-in")
            page.get_by_label("API token").fill(ADMIN)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Overview")).to_be_visible()

            # An endpoint and a token; the secret is shown once, with a curl example.
            page.get_by_role("link", name="Signal endpoints", exact=True).click()
            page.get_by_label("Name").fill("apm")
            page.get_by_role("button", name="Create endpoint").click()
            expect(page.get_by_role("heading", name="apm")).to_be_visible()
            page.get_by_label("New token name").fill("alerts")
            page.get_by_role("button", name="Create token").click()
            secret = page.locator("#new-secret").inner_text().strip()
            assert secret.startswith("signal_")
            expect(page.locator("#curl-example")).to_contain_text(f"Bearer {secret}")

            # A signal posted from outside appears without a reload; hostile content is shown as text.
            endpoint_url = page.url.removesuffix("/tokens")  # the form posted to …/tokens
            page.goto(endpoint_url)  # the endpoint's page as a returning visitor sees it (no secret any more)
            expect(page.locator("body")).not_to_contain_text(secret)
            expect(page.locator("#signals")).to_contain_text("No signal yet.")
            hostile = {
                "alert": {
                    "status": "firing",
                    "note": "<script>alert('xss')</script><img src=x onerror=alert(1)>",
                }
            }
            posted = httpx.post(f"{server}/api/signal-endpoint/apm", json=hostile,
                                headers={"Authorization": f"Bearer {secret}"}, timeout=10)  # fmt: skip
            assert posted.status_code == 200, posted.text
            expect(page.locator("#signals")).to_contain_text("#", timeout=10_000)
            page.locator("#signals summary").first.click()
            expect(page.locator("#signals pre").first).to_contain_text("<script>alert('xss')</script>")
            assert page.locator("#signals script").count() == 0 and page.locator("#signals img").count() == 0
            shot(page, "signal-endpoint")

            # An action set built in the editor: the key is suggested from the source's payloads, the
            # preview says which of the source's signals would match, as it is typed.
            endpoint_id = int(endpoint_url.rsplit("/", 1)[1])
            page.get_by_role("link", name="Action sets", exact=True).click()
            page.get_by_role("link", name="New action set").click()
            page.get_by_label("Name", exact=True).fill("kill checkout")
            page.get_by_label("Source (signal endpoint)").select_option(label="apm")
            expect(page.locator("#key-chips")).to_contain_text("alert.status")
            assert page.locator("#suggested-keys option[value='alert.status']").count() == 1
            page.locator("#filter-key-1").fill("alert.status")
            page.locator("#filter-values-1").fill("firing")
            expect(page.locator("#preview-summary")).to_have_text("1 of the last 1 signals would match.")
            page.locator("#filter-values-1").fill("resolved")
            expect(page.locator("#preview-summary")).to_have_text("0 of the last 1 signals would match.")
            page.locator("#filter-values-1").fill("firing")
            expect(page.locator("#preview-summary")).to_have_text("1 of the last 1 signals would match.")
            page.locator("#action-type-1").select_option("TOGGLE_FEATURE_OFF")
            page.locator("#action-flag-1").select_option("checkout-v2")
            page.locator("#action-env-1").select_option("production")
            shot(page, "action-set-editor")
            page.get_by_role("button", name="Save action set").click()
            expect(page.get_by_role("heading", name="kill checkout")).to_be_visible()
            expect(page.locator("body")).to_contain_text("No run yet.")
            broken = api.post("/api/admin/projects/default/actions", json={
                "name": "broken", "actorId": bot["id"],
                "match": {"source": "signal-endpoint", "sourceId": endpoint_id, "payload": {}},
                "actions": [{"action": "TOGGLE_FEATURE_ON", "sortOrder": 1, "executionParams": {
                    "project": "default", "environment": "production", "featureName": "gone-flag"}}]})  # fmt: skip
            broken.raise_for_status()
            httpx.post(f"{server}/api/signal-endpoint/apm", json={"alert": {"status": "firing"}},
                       headers={"Authorization": f"Bearer {secret}"}, timeout=10).raise_for_status()  # fmt: skip
            page.get_by_role("link", name="Action sets", exact=True).click()
            page.get_by_role("link", name="kill checkout").click()
            for _ in range(50):  # the in-process worker runs it within milliseconds; the page is not live
                if page.locator("ol.timeline > li.success").count():
                    break
                time.sleep(0.2)
                page.reload()
            expect(page.locator("ol.timeline > li.success").first).to_contain_text(
                "TOGGLE_FEATURE_OFF checkout-v2"
            )
            shot(page, "action-set-runs")
            page.get_by_role("link", name="Flags", exact=True).click()
            expect(page.get_by_role("button", name="checkout-v2 in production")).to_have_attribute(
                "aria-pressed", "false"
            )
            shot(page, "flags")
            page.get_by_role("link", name="Events", exact=True).click()
            expect(page.get_by_role("heading", name="Failed runs")).to_be_visible()
            expect(page.locator("table")).to_contain_text("gone-flag")
            shot(page, "failed-runs")

            # A switch in the flags view changes the flag (htmx, with the CSRF header).
            page.get_by_role("link", name="Flags", exact=True).click()
            page.get_by_role("button", name="checkout-v2 in production").click()
            expect(page.get_by_role("button", name="checkout-v2 in production")).to_have_attribute(
                "aria-pressed", "true"
            )
            state = api.get("/api/admin/projects/default/features/checkout-v2").json()
            assert next(e for e in state["environments"] if e["name"] == "production")["enabled"] is True
            page.get_by_role("link", name="Overview", exact=True).click()
            expect(page.locator("#backlog")).to_have_text("0")
            shot(page, "overview")

            # A request without the page's CSRF token is refused and changes nothing.
            forged = page.request.post(f"{server}/ui/signal-endpoints", form={"name": "forged"})
            assert forged.status == 403
            assert all(
                e["name"] != "forged"
                for e in api.get("/api/admin/signal-endpoints").json()["signalEndpoints"]
            )

            # Readable on a phone: no page is wider than the screen (tables scroll in their own frame).
            page.set_viewport_size({"width": 390, "height": 844})
            for path in (
                "/ui/",
                endpoint_url,
                "/ui/actions",
                "/ui/flags",
                "/ui/projects/default/actions/new",
            ):
                page.goto(path if path.startswith("http") else f"{server}{path}")
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, (path, width)
            shot(page, "phone-editor")
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(f"{server}/ui/")

            # Sign out: the session is gone.
            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(f"{server}/ui/sign-in")
            page.goto(f"{server}/ui/flags")
            expect(page).to_have_url(f"{server}/ui/sign-in")

            # A Viewer's token sees, and cannot change anything.
            page.get_by_label("API token").fill(viewer_token)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("(read only)")).to_be_visible()
            page.get_by_role("link", name="Signal endpoints", exact=True).click()
            assert page.get_by_role("button", name="Create endpoint").count() == 0
            page.get_by_role("link", name="Flags", exact=True).click()
            assert page.get_by_role("button", name="checkout-v2 in production").count() == 0
            csrf = page.locator('input[name="csrf_token"]').first.get_attribute("value")
            refused = page.request.post(
                f"{server}/ui/flags/default/checkout-v2/production/off", headers={"X-CSRF-Token": csrf or ""}
            )
            assert refused.status == 403
            state = api.get("/api/admin/projects/default/features/checkout-v2").json()
            assert next(e for e in state["environments"] if e["name"] == "production")["enabled"] is True
        finally:
            chromium.close()
    assert dialogs == []  # no script from a payload ever ran
