"""A refused public form shows the funnel's own page again, with inline errors."""

from __future__ import annotations

import re
import time

import pytest

from accounts.models import Membership
from funnels.models import Product, StepOffer
from funnels.public_forms import form_token_issue, form_token_read
from leads.models import Lead, Order
from pages.models import Page
from pages.services import (
    funnel_create_from_template,
    funnel_publish,
    page_update_settings,
    variant_add,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def tripwire(owner):
    workspace = Membership.objects.get(user=owner).workspace
    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="tripwire", name="Fix"
    )
    order = funnel.steps.get(kind="order")
    StepOffer.objects.create(
        workspace=workspace,
        step=order,
        product=Product.objects.create(
            workspace=workspace, name="Checklist", price_minor=700
        ),
        bump_product=Product.objects.create(
            workspace=workspace, name="Swipe file", price_minor=900
        ),
        bump_headline="Add the swipe file",
    )
    funnel_publish(funnel=funnel, user=owner)
    return funnel


def _token(step) -> str:
    return form_token_issue(step_id=step.pk, now=time.time() - 10)


def test_bad_email_shows_the_funnel_page_with_the_error(visitor, tripwire):
    """The visitor stays on the opt-in page they saw, with the message and values."""
    step = tripwire.steps.order_by("position").first()
    live = visitor.get(f"/{tripwire.slug}/").content.decode()
    response = visitor.post(
        f"/{tripwire.slug}/{step.slug}/optin/",
        {"email": "vera@", "first_name": "Vera", "_of": _token(step)},
    )
    assert response.status_code == 422
    body = response.content.decode()
    headline = re.search(r"<h1[^>]*>(.*?)</h1>", live, re.S).group(1)
    assert headline in body  # the funnel's own page, not a generic one
    assert "Enter a valid e-mail address" in body
    assert 'value="vera@"' in body and 'aria-invalid="true"' in body
    assert "__OF_FORM_TOKEN__" not in body
    token = re.search(r'name="_of" value="([^"]+)"', body).group(1)
    assert token != _token(step)  # a fresh single-use token for the retry
    assert response["Cache-Control"] == "private, no-store"
    assert Lead.objects.count() == 0


def test_retry_from_the_error_page_succeeds(visitor, tripwire):
    step = tripwire.steps.order_by("position").first()
    visitor.post(
        f"/{tripwire.slug}/{step.slug}/optin/", {"email": "x", "_of": _token(step)}
    )
    response = visitor.post(
        f"/{tripwire.slug}/{step.slug}/optin/",
        {"email": "vera@example.com", "_of": _token(step)},
    )
    assert response.status_code == 302
    assert Lead.objects.get().email == "vera@example.com"


def test_declined_card_keeps_contact_and_bump_never_the_card(visitor, tripwire):
    step = tripwire.steps.get(kind="order")
    response = visitor.post(
        f"/{tripwire.slug}/{step.slug}/order/",
        {
            "name": "Vera Visitor",
            "email": "vera@example.com",
            "card": "4000 0000 0000 0002",
            "cvc": "123",
            "bump": "yes",
            "_of": _token(step),
        },
    )
    assert response.status_code == 402
    body = response.content.decode()
    assert "Your card was declined" in body
    assert 'class="of-form-alert"' in body
    assert 'value="Vera Visitor"' in body and 'value="vera@example.com"' in body
    assert re.search(r'name="bump" value="yes" checked', body)
    assert "4000 0000 0000 0002" not in body and 'value="123"' not in body
    assert Order.objects.get().status == "failed"


def test_unticked_consent_is_refused_when_the_form_asked_for_it(visitor, tripwire):
    step = tripwire.steps.order_by("position").first()
    response = visitor.post(
        f"/{tripwire.slug}/{step.slug}/optin/",
        {
            "email": "vera@example.com",
            "consent_text": "Yes, e-mail me.",
            "_of": _token(step),
        },
    )
    assert response.status_code == 422
    assert "Please tick the box" in response.content.decode()
    assert Lead.objects.count() == 0


def test_upsell_without_an_order_explains_on_the_upsell_page(visitor, tripwire):
    step = tripwire.steps.get(kind="upsell")
    response = visitor.post(f"/{tripwire.slug}/{step.slug}/accept/", {})
    assert response.status_code == 409
    body = response.content.decode()
    assert "We could not find your order" in body
    assert 'class="of-upsell"' in body


@pytest.mark.parametrize("field", ["email", "first_name", "custom_city", "_of"])
def test_nul_bytes_anywhere_never_500(visitor, tripwire, field):
    """PostgreSQL cannot store NUL; a bot that sends one gets an answer, not a 500."""
    step = tripwire.steps.order_by("position").first()
    data = {"email": "nul@example.com", "first_name": "Nu", "_of": _token(step)}
    data[field] = data.get(field, "x") + "\x00evil"
    response = visitor.post(
        f"/{tripwire.slug}/{step.slug}/optin/?utm_source=a%00b",
        data,
        HTTP_REFERER="http://elsewhere.test/?utm_source=\x00",
        HTTP_USER_AGENT="Mozilla/5.0\x00",
    )
    assert response.status_code in {302, 400, 422}
    order = tripwire.steps.get(kind="order")
    response = visitor.post(
        f"/{tripwire.slug}/{order.slug}/order/",
        {"email": "nul@example.com", "name": "A\x00B", "card": "4242424242424242"}
        | {"_of": _token(order)},
    )
    assert response.status_code in {302, 400, 402, 422}


@pytest.mark.parametrize("email", ["vera@", "vera@example.com"])
def test_refused_form_shows_the_variant_the_visitor_saw(visitor, tripwire, email):
    """Bad input, or a post too fast to be a person: the same variant comes back."""
    step = tripwire.steps.order_by("position").first()
    a = Page.objects.get(step=step)
    b = variant_add(page=a)
    page_update_settings(page=b, data={"title": "Variant B title"})
    funnel_publish(funnel=tripwire, user=None)
    b.refresh_from_db()
    age = 10 if email == "vera@" else 0  # 0: refused as too fast
    token = form_token_issue(step_id=step.pk, variant_id=b.pk, now=time.time() - age)
    response = visitor.post(
        f"/{tripwire.slug}/{step.slug}/optin/", {"email": email, "_of": token}
    )
    assert response.status_code in {400, 422}
    body = response.content.decode()
    assert "<title>Variant B title</title>" in body
    fresh = re.search(r'name="_of" value="([^"]+)"', body).group(1)
    assert form_token_read(fresh).variant_id == b.pk
