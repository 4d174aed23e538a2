"""An admin connects a custom domain; a visitor opens it and opts in there.

Runs the production WSGI application (config/wsgi.py) in a thread. The browser maps
the custom host name to that server with Chromium's --host-resolver-rules.
"""

from __future__ import annotations

import threading

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.db import connection

from accounts.models import Membership
from analytics import ingest
from analytics import services as analytics
from analytics.models import Event
from config.wsgi import application
from leads.models import Lead
from pages import serving
from pages.services import funnel_create_from_template, funnel_publish
from tests.e2e.conftest import CHROMIUM, LAUNCH_ARGS
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)
HOST = "shop.example.test"
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def app_server():
    server = ThreadedWSGIServer(("127.0.0.1", 0), _Quiet)
    server.set_app(StaticFilesHandler(application))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    # Keep-alive request threads may still hold a connection to the test database.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def domain_browser(browser):
    """A second Chromium (same Playwright) that resolves HOST to this machine."""
    mapped = browser.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[*LAUNCH_ARGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1"],
    )
    yield mapped
    if mapped.is_connected():
        mapped.close()


def test_admin_connects_domain_and_visitor_opts_in_on_it(
    app_server, domain_browser, screenshot, owner
):
    ingest.redis_reset()
    ingest.partitions_forget()
    serving.local_caches_clear()
    workspace = Membership.objects.get(user=owner).workspace
    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="lead-magnet", name="Spring Guide"
    )
    funnel_publish(funnel=funnel, user=owner)
    base = f"http://127.0.0.1:{app_server}"

    admin = domain_browser.new_context(viewport={"width": 1280, "height": 860})
    page = admin.new_page()
    page.goto(base + "/login/")
    page.get_by_label("E-mail").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)
    page.goto(base + "/settings/")
    page.get_by_role("link", name="Domains").click()
    page.get_by_label("Domain name").fill("not a domain")
    page.get_by_role("button", name="Add domain").click()
    assert page.get_by_text("is not a valid domain name").is_visible()
    page.get_by_label("Domain name").fill("Shop.Example.TEST")
    page.get_by_label("Funnel").select_option(label="Spring Guide")
    page.get_by_role("button", name="Add domain").click()
    row = page.locator("#domain-list tr", has_text=HOST)
    assert row.is_visible()
    assert "CNAME" in row.inner_text()
    screenshot(page, "custom-domain-settings")

    # Headless Chromium says so in its User-Agent, and bots are not counted.
    visitor = domain_browser.new_context(
        viewport={"width": 1280, "height": 860}, user_agent=BROWSER_UA
    )
    guest = visitor.new_page()
    guest.goto(f"http://{HOST}:{app_server}/?utm_source=newsletter")
    assert guest.title()  # the funnel's opt-in page, styled by its own CSS
    assert guest.locator("form").first.is_visible()
    assert guest.evaluate("getComputedStyle(document.body).fontFamily"), (
        "page.css did not load on the custom domain"
    )
    screenshot(guest, "custom-domain-page")
    guest.get_by_label("First name").first.fill("Rosa")
    guest.get_by_label("Email").first.fill("rosa@example.com")
    guest.get_by_role("checkbox").first.check()
    guest.wait_for_timeout(2100)  # the form refuses posts faster than a person
    guest.locator("form button[type=submit]").first.click()
    guest.wait_for_load_state()
    assert guest.url.startswith(f"http://{HOST}:{app_server}/")
    assert funnel.slug not in guest.url
    screenshot(guest, "custom-domain-thanks")
    lead = Lead.objects.get(workspace=workspace, email="rosa@example.com")
    assert lead.first_source == "newsletter"
    analytics.events_flush()
    steps = list(funnel.steps.order_by("position"))
    viewed = set(
        Event.objects.filter(workspace_id=workspace.pk, kind="view").values_list(
            "step_id", flat=True
        )
    )
    assert viewed == {steps[0].pk, steps[1].pk}
    admin.close()
    visitor.close()
    domain_browser.close()
