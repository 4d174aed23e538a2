"""A person creates an API token in Settings → API, a script uses it over plain
HTTP against the live server, and the audit log shows what the script did."""

from __future__ import annotations

import json
import urllib.request
from datetime import date

import pytest

from pages.services import funnel_create_from_template
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def call(url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    """A plain HTTP client, as a customer's script would use."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.status, json.loads(response.read())


def test_token_from_the_browser_drives_the_api_and_shows_in_the_audit_log(
    live_server, page, owner, workspace, screenshot
):
    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="lead-magnet", name="Guide"
    )
    log_in(page, live_server, owner.email)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="API", exact=True).click()
    page.get_by_label("Token name").fill("CRM sync")
    page.get_by_label("Read-write").check()
    page.get_by_role("button", name="Create token").click()
    page.get_by_role("heading", name="Copy your new token now").wait_for()
    token = page.get_by_label("New API token").input_value()
    assert token.startswith("of_")
    screenshot(page, "api-token-created")

    status, lead = call(
        live_server.url + "/api/v1/leads",
        token,
        {"email": "script@example.com", "first_name": "Sam", "tags": ["crm"]},
    )
    assert status == 201 and lead["tags"] == ["crm"]
    status, stats = call(
        live_server.url
        + f"/api/v1/funnels/{funnel.pk}/stats?date_to={date.today().isoformat()}",
        token,
    )
    assert status == 200
    assert [s["name"] for s in stats["steps"]] == [
        s.name for s in funnel.steps.order_by("position")
    ]

    page.get_by_role("link", name="API", exact=True).click()
    row = page.get_by_role("row").filter(has_text="CRM sync")
    assert "ago" in row.inner_text() and "127.0.0.1" in row.inner_text()
    page.get_by_role("link", name="Audit log").click()
    table = page.get_by_role("table")
    table.get_by_text("lead.create").wait_for()
    for text in ("lead.create", "stats.read", "api_token.create", "script@example.com"):
        assert table.get_by_text(text).count() >= 1, text
    assert table.get_by_text("API token “CRM sync”").count() == 2
    page.get_by_label("Action").select_option("stats.read")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**action=stats.read**")
    assert page.get_by_role("table").get_by_text("lead.create").count() == 0
    screenshot(page, "audit-log")


def test_api_docs_work_under_the_admin_csp(live_server, page):
    """The docs page uses only files served by the app (no outside host), and its
    scripts run under the admin's CSP (script-src 'self': no inline script)."""
    violations: list[str] = []
    outside: list[str] = []
    page.on(
        "console",
        lambda m: (
            violations.append(m.text) if "Content Security Policy" in m.text else None
        ),
    )
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if not r.url.startswith(live_server.url) and not r.url.startswith("data:")
            else None
        ),
    )
    response = page.goto(live_server.url + "/api/v1/docs/")
    csp = response.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    page.get_by_role("heading", name="OpenFunnels API").wait_for()
    page.get_by_text("/api/v1/leads/{lead_id}/erase").first.wait_for()
    assert not violations, violations
    assert outside == []
