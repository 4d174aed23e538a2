from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from funnels.models import Product, StepOffer
from leads import checkout
from leads.gateways.testgateway import SUCCESS_CARD
from tests.factories import ProductFactory, StepFactory, offers_freeze

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_order(funnel, workspace):
    step = StepFactory(funnel=funnel, slug="order", kind="order", position=1)
    main = ProductFactory(workspace=workspace, name="Guide", price_minor=700)
    bump = ProductFactory(workspace=workspace, name="Checklist", price_minor=900)
    StepOffer.objects.create(
        workspace=workspace, step=step, product=main, bump_product=bump
    )
    offers_freeze(funnel)
    return checkout.order_checkout(
        step=step,
        data={"email": "buyer@x.io"},
        payment_token=SUCCESS_CARD,
        with_bump=True,
        nonce="v1",
    ).order


def test_orders_list_detail_and_csv(owner_client, paid_order):
    """The orders admin lists the order with its total; CSV has the same row."""
    page = owner_client.get(reverse("leads:orders")).content.decode()
    assert "buyer@x.io" in page and "$16.00" in page
    detail = owner_client.get(reverse("leads:order_detail", args=[paid_order.pk]))
    assert "Checklist" in detail.content.decode()
    response = owner_client.get(reverse("leads:orders_csv"))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][2:8] == ["paid", "buyer@x.io", "Guide", "USD", "1600", "0"]
    assert rows[0][8:] == [
        "First source",
        "First medium",
        "First campaign",
        "First referrer",
        "Last source",
        "Last medium",
        "Last campaign",
        "Last referrer",
        "Split-test variants",
    ]


def test_refund_from_admin(owner_client, paid_order):
    """A partial refund typed as money is applied through the gateway."""
    owner_client.post(
        reverse("leads:order_refund", args=[paid_order.pk]), {"amount": "5.50"}
    )
    paid_order.refresh_from_db()
    assert (paid_order.refunded_minor, paid_order.status) == (550, "partially_refunded")
    response = owner_client.post(
        reverse("leads:order_refund", args=[paid_order.pk]),
        {"amount": "abc"},
        follow=True,
    )
    assert "Enter a price like 27 or 27.00." in response.content.decode()


def test_lead_page_shows_orders(owner_client, paid_order):
    page = owner_client.get(reverse("leads:detail", args=[paid_order.lead_id]))
    assert "$16.00" in page.content.decode()


def test_product_crud(owner_client, workspace):
    """Create a product with a typed price; a bad price gets a clear error."""
    response = owner_client.post(
        reverse("products:create"),
        {
            "name": "Course",
            "price": "97",
            "currency": "USD",
            "billing": "one_time",
        },
    )
    assert response.status_code == 302
    product = Product.objects.get(name="Course")
    assert (product.price_minor, product.workspace) == (9700, workspace)
    bad = owner_client.post(
        reverse("products:create"),
        {
            "name": "X",
            "price": "9.999",
            "currency": "USD",
            "billing": "one_time",
        },
    )
    assert bad.status_code == 422
    assert "Enter a price like 27 or 27.00." in bad.content.decode()
    sub = owner_client.post(
        reverse("products:create"),
        {
            "name": "Club",
            "price": "9",
            "currency": "USD",
            "billing": "subscription",
        },
    )
    assert "Choose how often a subscription is billed." in sub.content.decode()


def test_sold_product_cannot_be_deleted(owner_client, paid_order):
    """A product that was sold can only be archived."""
    product = Product.objects.get(name="Guide")
    response = owner_client.post(
        reverse("products:delete", args=[product.pk]), follow=True
    )
    assert "can only be archived" in response.content.decode()
    assert Product.objects.filter(pk=product.pk).exists()


def test_step_offer_refuses_currency_mismatch(owner_client, funnel, workspace):
    step = StepFactory(funnel=funnel, kind="order")
    usd = ProductFactory(workspace=workspace, currency="USD")
    eur = ProductFactory(workspace=workspace, currency="EUR")
    response = owner_client.post(
        reverse("leads:step_offer", args=[step.pk]),
        {"form": "offer", "product": usd.pk, "bump_product": eur.pk},
    )
    assert "Use one currency per order." in response.content.decode()
    assert not StepOffer.objects.exists()
