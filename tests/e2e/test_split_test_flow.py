"""A marketer runs a split test from the builder to a declared winner."""

from __future__ import annotations

import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from analytics import rollups, stats
from analytics import services as analytics
from analytics.templatetags.report import chance_text
from leads import public
from pages import services
from pages.models import Page, SplitTest
from tests.e2e.conftest import htmx_idle, log_in

pytestmark = pytest.mark.django_db(transaction=True)

NEW_HEADLINE = "Get the 7-day meal plan that saves 5 hours a week"


UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def _request(server: str, origin: str, path: str, **kwargs) -> urllib.request.Request:
    """A request for ``origin + path`` (the workspace's public host), sent to the
    live server: Python's resolver does not know *.localhost, so the host goes in
    the Host header."""
    headers = {"User-Agent": UA, "Host": urllib.parse.urlsplit(origin).netloc}
    headers.update(kwargs.pop("headers", {}))
    return urllib.request.Request(server + path, headers=headers, **kwargs)


def _land(server: str, origin: str, slug: str) -> tuple[str, str]:
    """A new visitor opens the funnel: (their visitor cookie, the page served)."""
    request = _request(server, origin, f"/{slug}/")
    with urllib.request.urlopen(request) as response:
        cookie = response.headers["Set-Cookie"].split(";")[0]
        return cookie, response.read().decode()


def _opt_in(
    server: str, origin: str, slug: str, step_slug: str, cookie: str, html: str
) -> None:
    token = re.search(r'name="_of" value="([^"]+)"', html).group(1)
    body = urllib.parse.urlencode(
        {
            "email": f"{uuid.uuid4().hex[:10]}@example.com",
            "consent": "yes",
            "_of": token,
        }
    ).encode()
    request = _request(
        server,
        origin,
        f"/{slug}/{step_slug}/optin/",
        data=body,
        headers={"Cookie": cookie, "Referer": f"{origin}/{slug}/"},
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(request)
    except urllib.error.HTTPError as exc:
        assert exc.code == 303 or exc.code == 302, exc.code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_split_test_from_builder_to_winner(
    live_server, public_url, page, screenshot, owner, workspace, monkeypatch
):
    """Add variant B in the builder, change its headline, split 50/50, publish;
    visits are tracked per variant; the results show both variants with their
    rates and chance to beat control; B is declared the winner."""
    funnel = services.funnel_create_from_template(
        workspace=workspace, user=owner, template_key="lead-magnet", name="Meal plan"
    )
    optin = funnel.steps.order_by("position").first()
    a = Page.objects.get(step=optin)
    log_in(page, live_server, owner.email)

    # From the funnel page into the builder of the opt-in step.
    page.goto(f"{live_server.url}/funnels/{funnel.pk}/")
    page.locator(f"#step-{optin.pk}").get_by_role("link", name="Edit page").click()
    page.locator("#canvas").wait_for()
    bar = page.locator("#variant-bar")
    assert bar.locator("[aria-current=page]").inner_text() == "Variant A"

    # Add variant B: the builder opens the copy and says which variant it edits.
    htmx_idle(page)
    page.locator("#add-variant-btn").click()
    page.get_by_text("Variant B is a copy of Variant A").wait_for()
    assert bar.locator("[aria-current=page]").inner_text().startswith("Variant B")
    b = Page.objects.get(step=optin, name="Variant B")
    assert page.url.endswith(f"/pages/{b.pk}/edit/")

    # Change B's headline.
    page.locator(".pb-block[data-type=headline] .pb-block-body").first.click()
    page.locator("#settings-pane", has_text="Headline").wait_for()
    htmx_idle(page)
    page.locator("#settings-pane").get_by_label("Text").fill(NEW_HEADLINE)
    page.locator(".pb-block[data-type=headline] h1", has_text=NEW_HEADLINE).wait_for()
    page.get_by_text("All changes saved").wait_for()
    htmx_idle(page)
    screenshot(page, "split-editor-variant-b")

    # Weights: 50/50, with the normalised split shown while typing.
    page.get_by_role("link", name="Weights & variants").click()
    page.get_by_label("Weight of Variant A").fill("50")
    page.get_by_label("Weight of Variant B").fill("50")
    page.locator(f'output[data-for="weight-{b.pk}"]', has_text="50.0 %").wait_for()
    page.get_by_role("button", name="Save weights").click()
    page.get_by_text("Weights saved.").wait_for()
    screenshot(page, "split-variants-weights")
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.weight, b.weight) == (50, 50)

    # Publish from B's editor.
    page.locator(f"#variant-{b.pk}").get_by_role("link", name="Edit page").click()
    page.locator("#publish-btn").click()
    page.get_by_role("dialog").get_by_role("button", name="Publish").click()
    page.get_by_text("Published!").wait_for()
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.is_served and b.is_served
    assert NEW_HEADLINE in b.published_version.html
    assert NEW_HEADLINE not in a.published_version.html
    test = SplitTest.objects.get(step=optin, ended_at__isnull=True)

    # 300 visitors land on the live page through the real serving and tracking
    # path; serving picks their variant. More of B's visitors opt in.
    monkeypatch.setattr(public, "IP_LIMIT", (1000, 600))  # all come from 127.0.0.1
    rng = random.Random(6)
    origin = public_url(workspace, "")
    landed = [_land(live_server.url, origin, funnel.slug) for _ in range(300)]
    expected = {a.pk: [0, 0], b.pk: [0, 0]}
    time.sleep(2.1)  # the forms refuse posts faster than a person types
    for cookie, html in landed:
        variant = b.pk if NEW_HEADLINE in html else a.pk
        converts = rng.random() < (0.50 if variant == b.pk else 0.20)
        if converts:
            _opt_in(live_server.url, origin, funnel.slug, optin.slug, cookie, html)
        expected[variant][0] += 1
        expected[variant][1] += int(converts)
    assert min(n for n, _ in expected.values()) > 100  # both variants served
    analytics.events_flush()
    rollups.rollups_update()

    # The funnel dashboard links the step's split test.
    page.goto(f"{live_server.url}/analytics/funnels/{funnel.pk}/")
    page.get_by_role("link", name="Split test →").click()
    table = page.locator("#split-results")
    table.wait_for()
    for variant, label in ((a, "Variant A"), (b, "Variant B")):
        row = table.locator(f"tr[data-variant='{label}']")
        cells = row.locator("td").all_inner_texts()
        n, c = expected[variant.pk]
        assert cells[1].splitlines()[0] == f"{n:,}"
        assert cells[1].splitlines()[1].endswith("target 50.0 %")
        assert cells[2] == f"{c:,}"
        assert cells[3].startswith(f"{c / n * 100:.1f} %")
    b_cells = table.locator("tr[data-variant='Variant B'] td").all_inner_texts()
    (n_a, c_a), (n_b, c_b) = expected[a.pk], expected[b.pk]
    chance = stats.prob_b_beats_a(1 + c_a, 1 + n_a - c_a, 1 + c_b, 1 + n_b - c_b)
    assert chance > 0.99  # the scripted traffic makes B clearly better
    assert b_cells[5] == chance_text(chance)  # chance to beat control
    assert "Control" in table.locator("tr[data-variant='Variant A']").inner_text()
    page.get_by_text("Variant B is very likely better than Variant A").wait_for()
    assert page.locator("svg.chart-interval circle").count() == 2
    screenshot(page, "split-results")

    # A reversed date range is explained, not silently wrong.
    page.get_by_label("From").fill("2026-05-10")
    page.get_by_label("To").fill("2026-05-01")
    page.get_by_role("button", name="Apply").click()
    page.get_by_text("is after the end date").wait_for()
    page.get_by_role("link", name="Whole test").click()

    # Declare B the winner, after a confirmation.
    table.locator("tr[data-variant='Variant B']").get_by_role(
        "link", name="Declare winner"
    ).click()
    page.get_by_role("heading", name="Declare Variant B the winner?").wait_for()
    screenshot(page, "split-declare-confirm")
    page.get_by_role("button", name="Yes, Variant B wins").click()
    page.get_by_text("Variant B won.").wait_for()
    history = page.locator("#history")
    assert "Variant B" in history.locator(".sp-winner").inner_text()
    won = history.locator("tr.sp-won").locator("td").all_inner_texts()
    assert won[1] == f"{expected[b.pk][0]:,}"
    screenshot(page, "split-history")
    a.refresh_from_db()
    b.refresh_from_db()
    assert b.is_served and not a.is_served and a.archived_at is not None
    test.refresh_from_db()
    assert test.winner_id == b.pk and test.results["variants"][1]["label"] == (
        "Variant B"
    )
