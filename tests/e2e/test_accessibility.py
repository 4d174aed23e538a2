"""axe-core finds no serious or critical violation on the editor, the dashboards
and every page of every funnel template, published."""

from __future__ import annotations

import pytest

from pages import selectors, services
from pages.models import Page
from tests.e2e.axe import violations
from tests.e2e.conftest import htmx_idle, log_in
from tests.factories import offers_fill

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_pages_have_no_serious_violation(live_server, page, owner, workspace):
    funnel = services.funnel_create_from_template(
        workspace=workspace, user=owner, template_key="tripwire", name="Axe check"
    )
    first = Page.objects.filter(step__funnel=funnel).order_by("step__position").first()
    from leads.sequences import services as sequences

    sequence = sequences.sequence_save(
        workspace=workspace, name="Win back", funnel=funnel
    )
    sequences.sequence_step_save(
        sequence=sequence, subject="Come back", body="Hi", delay_minutes=60
    )
    log_in(page, live_server, owner.email)
    found = {}
    for path in (
        f"/pages/{first.pk}/edit/",
        f"/funnels/{funnel.pk}/",
        "/funnels/",
        "/analytics/",
        f"/analytics/funnels/{funnel.pk}/",
        "/funnel-templates/",
        f"/pages/{first.pk}/publish/check/",
        "/settings/page-speed/",
        "/sequences/",
        "/sequences/new/",
        f"/sequences/{sequence.pk}/",
    ):
        page.goto(live_server.url + path)
        htmx_idle(page)
        found[path] = violations(page)
    # The editor with a block selected (settings and style panels open).
    page.goto(f"{live_server.url}/pages/{first.pk}/edit/")
    page.locator(".pb-block[data-type=headline] .pb-block-body").first.click()
    page.locator("#style-form").wait_for()
    htmx_idle(page)
    found["editor, block selected"] = violations(page)
    bad = {k: v for k, v in found.items() if v}
    assert not bad, "\n".join(f"{k}: {line}" for k, v in bad.items() for line in v)


def test_every_template_page_published_has_no_serious_violation(
    live_server, public_url, page, owner, workspace
):
    found = {}
    for key in selectors.funnel_templates():
        funnel = services.funnel_create_from_template(
            workspace=workspace, user=owner, template_key=key, name=f"Axe {key}"
        )
        offers_fill(funnel)  # publishing refuses selling steps without a product
        services.funnel_publish(funnel=funnel, user=owner)
        for step in funnel.steps.order_by("position"):
            page.goto(public_url(workspace, f"/{funnel.slug}/{step.slug}/"))
            found[f"{key}/{step.slug}"] = violations(page)
    bad = {k: v for k, v in found.items() if v}
    assert not bad, "\n".join(f"{k}: {line}" for k, v in bad.items() for line in v)
