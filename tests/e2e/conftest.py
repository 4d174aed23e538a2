"""Browser tests: Debian's Chromium driven by Playwright against a live server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.factories import PASSWORD

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def person_user_agent(browser) -> str:
    """Headless Chromium's user agent says "HeadlessChrome", which tracking rightly
    counts as a bot; browser tests play people, so they use the desktop string."""
    context = browser.new_context()
    agent = context.new_page().evaluate("navigator.userAgent")
    context.close()
    return agent.replace("HeadlessChrome", "Chrome")


@pytest.fixture
def new_page(browser, person_user_agent):
    """Open a fresh browser context (own cookies) per call."""
    contexts = []

    def make(**kwargs):
        kwargs.setdefault("user_agent", person_user_agent)
        kwargs.setdefault("viewport", {"width": 1280, "height": 860})
        context = browser.new_context(**kwargs)
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def screenshot():
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def public_url(live_server, settings):
    """``public_url(workspace, path)``: the address of a workspace's published page
    on the live server (http://<slug>.localhost:<port>/...; Chromium resolves every
    *.localhost name to this machine). Sets PUBLIC_DOMAIN to match, so links the
    app renders (View live, sitemap) point there too."""
    port = live_server.url.rsplit(":", 1)[1]
    settings.PUBLIC_DOMAIN = f"localhost:{port}"

    def make(workspace, path: str = "/") -> str:
        return f"http://{workspace.slug}.localhost:{port}{path}"

    return make


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


# wait_for_function predicates are written as functions ("() => ..."): Playwright
# compiles a function once, but evals a bare expression on every poll, which the
# pages' Content-Security-Policy (no 'unsafe-eval') refuses.
def htmx_idle(page) -> None:
    """Wait until htmx has no request, swap or settle in flight (and has bound the
    new content), so the next click or keystroke is not lost."""
    page.wait_for_function(
        "() => window.htmx && !document.querySelector("
        "'.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )
    page.wait_for_timeout(150)


def log_in(page, live_server, email: str) -> None:
    """Log in through the form, as a person would."""
    page.goto(live_server.url + "/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)


TRIPWIRE_PRICES = {
    "order": ("Checklist", 700),
    "upsell": ("Course", 9700),
    "downsell": ("Lite", 4700),
}


@pytest.fixture
def tripwire(owner):
    """The Tripwire template, published, its steps selling: checklist $7 with a $9
    swipe-file bump, course $97 upsell, lite $47 downsell."""
    from accounts.models import Membership
    from analytics import ingest
    from funnels.models import Product, StepOffer
    from pages.services import funnel_create_from_template, funnel_publish

    ingest.redis_reset()
    ingest.partitions_forget()
    workspace = Membership.objects.get(user=owner).workspace
    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="tripwire", name="Fix Funnel"
    )
    for step in funnel.steps.all():
        if step.kind not in TRIPWIRE_PRICES:
            continue
        name, price = TRIPWIRE_PRICES[step.kind]
        is_order = step.kind == "order"
        StepOffer.objects.create(
            workspace=workspace,
            step=step,
            product=Product.objects.create(
                workspace=workspace, name=name, price_minor=price
            ),
            bump_product=Product.objects.create(
                workspace=workspace, name="Swipe file", price_minor=900
            )
            if is_order
            else None,
            bump_headline="Add the swipe file" if is_order else "",
        )
    funnel_publish(funnel=funnel, user=owner)
    return funnel
