"""What the visitor sees is what is charged: publishing freezes each selling
step's offer; changing it afterwards marks the funnel "changes not published";
publishing refuses a selling step without a product; copy reads prices through
merge fields."""

from __future__ import annotations

import re
import time

import pytest
from django.core.management import call_command
from django.urls import reverse

from funnels.models import Funnel, Product, StepOffer
from funnels.public_forms import form_token_issue
from leads.gateways.testgateway import SUCCESS_CARD
from leads.models import Order
from pages import documents
from pages.services import funnel_publish, page_edit, page_for_step
from tests.factories import FunnelFactory, ProductFactory, StepFactory

pytestmark = pytest.mark.django_db


def _order_doc(headline: str = "Get the guide") -> dict:
    """An order page: a headline saying ``headline`` and an order form."""
    section = documents.new_section()
    blocks = section["rows"][0]["columns"][0]["blocks"]
    blocks.append(documents.new_block("headline", {"text": headline}))
    blocks.append(documents.new_block("order_form"))
    return {"sections": [section]}


def _set_page(step, doc: dict) -> None:
    page_edit(page=page_for_step(step=step), revision=None, operation=lambda _d: doc)


@pytest.fixture
def shop(workspace, owner):
    funnel = FunnelFactory(workspace=workspace, name="Guide", slug="guide")
    order = StepFactory(
        funnel=funnel, name="Order form", slug="order", kind="order", position=0
    )
    StepFactory(funnel=funnel, slug="thanks", kind="thankyou", position=1)
    guide = ProductFactory(workspace=workspace, name="Guide", price_minor=700)
    StepOffer.objects.create(workspace=workspace, step=order, product=guide)
    _set_page(order, _order_doc())
    return {"funnel": funnel, "order": order, "guide": guide}


def _order_page(visitor) -> str:
    return visitor.get("/guide/order/").content.decode()


def _offer_id(html: str) -> str:
    return re.search(r'name="_offer" value="(\d+)"', html).group(1)


def _buy(visitor, step, offer_id=""):
    data = {
        "email": "b@x.io",
        "card": SUCCESS_CARD,
        "_of": form_token_issue(step_id=step.pk, now=time.time() - 10),
    }
    if offer_id:
        data["_offer"] = offer_id
    return visitor.post("/guide/order/order/", data)


def test_changing_an_offer_after_publishing_changes_neither_page_nor_charge(
    visitor, owner_client, shop, workspace, owner
):
    """Publish at $7, then sell a $9 product: the live page still shows $7 and the
    visitor is charged $7 (the issue saw one price shown and another charged)."""
    funnel_publish(funnel=shop["funnel"], user=owner)
    shown = _order_page(visitor)
    assert "Guide" in shown and "$7.00" in shown
    pricier = ProductFactory(workspace=workspace, name="Kit", price_minor=900)
    saved = owner_client.post(
        reverse("leads:step_offer", args=[shop["order"].pk]),
        {"form": "offer", "product": pricier.pk},
        follow=True,
    ).content.decode()
    assert "$7.00" in _order_page(visitor) and "Kit" not in _order_page(visitor)
    offer = re.search(r'name="_offer" value="(\d+)"', shown)
    assert (
        _buy(visitor, shop["order"], offer.group(1) if offer else "").status_code == 302
    )
    assert Order.objects.get().paid_minor == 700
    assert "The live page keeps the offer it was published with" in saved
    assert "Changes not published." in saved


def test_republish_charges_the_new_offer_and_refuses_the_old_page(
    visitor, shop, workspace, owner
):
    funnel_publish(funnel=shop["funnel"], user=owner)
    old = _offer_id(_order_page(visitor))
    StepOffer.objects.filter(step=shop["order"]).update(
        product=ProductFactory(workspace=workspace, name="Kit", price_minor=900)
    )
    funnel_publish(funnel=shop["funnel"], user=owner)
    new_page = _order_page(visitor)
    assert "Kit" in new_page and "$9.00" in new_page
    refused = _buy(visitor, shop["order"], old)
    assert refused.status_code == 409
    body = refused.content.decode()
    assert "The offer on this page changed while you were on it" in body
    assert "$9.00" in body  # the page again, with the offer now live
    assert not Order.objects.exists()
    assert _buy(visitor, shop["order"], _offer_id(new_page)).status_code == 302
    assert Order.objects.get().paid_minor == 900


def test_a_price_change_marks_the_funnel_and_one_click_republishes(
    owner_client, shop, owner
):
    funnel_publish(funnel=shop["funnel"], user=owner)
    url = reverse("funnels:detail", args=[shop["funnel"].pk])
    assert "Changes not published" not in owner_client.get(url).content.decode()
    Product.objects.filter(pk=shop["guide"].pk).update(price_minor=800)
    page = owner_client.get(url).content.decode()
    assert "Changes not published." in page and "“Order form”" in page
    owner_client.post(reverse("pages:funnel_publish", args=[shop["funnel"].pk]))
    assert "Changes not published" not in owner_client.get(url).content.decode()


def test_publishing_refuses_a_selling_step_without_a_product(
    owner_client, workspace, owner
):
    """The issue's templates published order forms that sold nothing."""
    funnel = FunnelFactory(workspace=workspace, name="Bare", slug="bare")
    order = StepFactory(funnel=funnel, name="Checkout", kind="order", position=0)
    upsell = StepFactory(funnel=funnel, name="One more", kind="upsell", position=1)
    response = owner_client.post(
        reverse("pages:funnel_publish", args=[funnel.pk]), follow=True
    )
    body = response.content.decode()
    assert "Not published: “Checkout” sells nothing yet: choose its product." in body
    assert f'href="{reverse("leads:step_offer", args=[order.pk])}"' in body
    assert f'href="{reverse("leads:step_offer", args=[upsell.pk])}"' in body
    funnel.refresh_from_db()
    assert funnel.published_at is None


def test_merge_fields_put_the_frozen_offer_into_the_copy(visitor, shop, owner):
    Product.objects.filter(pk=shop["guide"].pk).update(compare_at_minor=4700)
    _set_page(
        shop["order"],
        _order_doc(
            "{{offer.name}} for {{ offer.price }}, normally {{offer.regular_price}}"
            " — save {{offer.savings}}{{bump.price}}"
        ),
    )
    funnel_publish(funnel=shop["funnel"], user=owner)
    html = _order_page(visitor)
    assert "Guide for $7.00, normally $47.00 — save $40.00<" in html
    assert "{{" not in html


def test_the_demo_funnel_charges_what_its_buttons_say(public_client):
    """The demo's copy and prices come from one place: every price a button or
    headline names is a price charged (the issue saw "$37" charge $97)."""
    call_command("seed_demo", stdout=None)
    funnel = Funnel.objects.get(name="Funnel Fix Tripwire")
    client = public_client(funnel.workspace)
    base = f"/{funnel.slug}/"
    for step in funnel.steps.filter(kind__in=["order", "upsell", "downsell"]):
        html = client.get(f"{base}{step.slug}/").content.decode()
        step.refresh_from_db()
        live = step.live_offer
        price = f"${live.price_minor / 100:.2f}"
        if step.kind == "order":
            heading = re.search(r'class="of-order-heading"[^>]*>([^<]*)<', html)
            assert heading.group(1) == f"Yes! Send me the {live.name} for {price}"
            bump = re.search(r'<label class="of-bump">(.*?)</label>', html, re.S)
            bump_price = f"${live.bump_price_minor / 100:.2f}"
            assert f"for just {bump_price} (normally $29.00)" in bump.group(1)
        else:
            buttons = re.findall(r'<button[^>]*type="submit">([^<]*)</button>', html)
            assert f"{live.name} for {price}" in buttons[0], buttons
