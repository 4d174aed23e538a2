"""Opt-ins and sales land in the same event stream as page views, exactly once."""

from __future__ import annotations

import time

import pytest

from analytics import ingest
from analytics import services as analytics
from analytics.models import Event, Visitor
from funnels.models import StepOffer
from funnels.public_forms import form_token_issue
from leads.gateways.testgateway import SUCCESS_CARD
from leads.models import Lead
from tests.factories import ProductFactory, StepFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_stream():
    ingest.redis_reset()
    ingest.partitions_forget()
    ingest.redis_client().delete(ingest.STREAM_KEY)
    yield
    ingest.redis_client().delete(ingest.STREAM_KEY)


def _token(step):
    return form_token_issue(step_id=step.pk, now=time.time() - 10)


def test_optin_records_event_links_visitor_and_touches(
    visitor, optin_step, thanks_step
):
    """The opt-in event carries the visitor; the lead gets the page's UTM touch."""
    response = visitor.post(
        "/guide/optin/optin/",
        {"email": "t@x.io", "_of": _token(optin_step)},
        HTTP_REFERER="http://acme.localhost/guide/optin/?utm_source=facebook&utm_campaign=may",
        HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Chrome/120",
    )
    assert response.status_code == 302
    cookie = response.cookies[analytics.visitor_cookie_name(optin_step.workspace)]
    assert cookie["samesite"] == "Lax" and cookie["httponly"]
    analytics.events_flush()
    lead = Lead.objects.get()
    assert (lead.last_source, lead.last_campaign) == ("facebook", "may")
    assert lead.first_source == "facebook"
    event = Event.objects.get(kind="optin")
    assert event.step_id == optin_step.pk
    visitor = Visitor.objects.get(public_id=event.visitor_id)
    assert visitor.lead_id == lead.pk
    assert lead.visitor_id == event.visitor_id


def test_sale_events_carry_amounts(visitor, funnel, workspace):
    order = StepFactory(funnel=funnel, slug="order", kind="order", position=1)
    StepFactory(funnel=funnel, slug="thanks", kind="thankyou", position=2)
    StepOffer.objects.create(
        workspace=workspace,
        step=order,
        product=ProductFactory(workspace=workspace, price_minor=700),
        bump_product=ProductFactory(workspace=workspace, price_minor=900),
    )
    visitor.post(
        "/guide/order/order/",
        {"email": "b@x.io", "card": SUCCESS_CARD, "bump": "on", "_of": _token(order)},
    )
    analytics.events_flush()
    rows = sorted(
        Event.objects.filter(kind__in=["order", "bump"]).values_list(
            "kind", "amount_minor", "currency"
        )
    )
    assert rows == [("bump", 900, "USD"), ("order", 700, "USD")]


def test_lead_page_shows_journey(client, visitor, owner, optin_step, thanks_step):
    visitor.post(
        "/guide/optin/optin/",
        {"email": "j@x.io", "_of": _token(optin_step)},
        HTTP_USER_AGENT="Mozilla/5.0 Chrome/120",
    )
    analytics.events_flush()
    client.force_login(owner)
    lead = Lead.objects.get()
    page = client.get(f"/leads/{lead.pk}/").content.decode()
    assert "Opt-in</strong> · Guide › Opt-in" in page
