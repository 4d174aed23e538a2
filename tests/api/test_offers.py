"""API: writing step offers (and products), audited, as the offer page writes them."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, AuditEntry
from funnels.models import Product, StepOffer
from pages.services import funnel_create_from_template
from tests.api.conftest import error_of
from tests.factories import FunnelFactory, ProductFactory, StepFactory, offers_fill

pytestmark = pytest.mark.django_db


@pytest.fixture
def tripwire(workspace):
    return funnel_create_from_template(
        workspace=workspace, user=None, template_key="tripwire", name="Fix Funnel"
    )


@pytest.fixture
def products(workspace):
    return (
        ProductFactory(workspace=workspace, name="Checklist", price_minor=700),
        ProductFactory(workspace=workspace, name="Swipe file", price_minor=900),
    )


def _audit(workspace, prefix: str) -> list[tuple]:
    return list(
        AuditEntry.objects.filter(workspace=workspace, action__startswith=prefix)
        .order_by("id")
        .values_list("action", "actor_token", "target_id", "changes")
    )


def test_offer_create_then_change(api, tripwire, products, workspace):
    """POST sets a step's first offer (201; an Idempotency-Key retry replays it),
    a second POST is a 409, PATCH changes only the fields sent; each change is
    one audit entry under the token."""
    main, bump = products
    order = tripwire.steps.get(kind="order")
    body = {
        "step": order.pk,
        "product": main.pk,
        "bump_product": bump.pk,
        "bump_headline": "Add the swipe file",
    }
    key = {"Idempotency-Key": "offer-1"}
    response = api.post(f"/funnels/{tripwire.pk}/offers", body, headers=key)
    assert response.status_code == 201
    created = response.json()
    assert (created["step"], created["step_kind"]) == (order.pk, "order")
    assert (created["product"]["name"], created["bump_product"]["price_minor"]) == (
        "Checklist",
        900,
    )
    assert created["bump_headline"] == "Add the swipe file"
    assert created["changes_not_published"] is False  # nothing is live yet
    replay = api.post(f"/funnels/{tripwire.pk}/offers", body, headers=key)
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == created
    again = api.post(f"/funnels/{tripwire.pk}/offers", body)
    assert again.status_code == 409
    assert "PATCH" in error_of(again)["message"]

    response = api.patch(
        f"/funnels/{tripwire.pk}/offers/{order.pk}", {"bump_product": None}
    )
    assert response.status_code == 200
    changed = response.json()
    assert changed["bump_product"] is None
    assert changed["bump_headline"] == "Add the swipe file"  # not sent: kept
    offer = StepOffer.objects.get(step=order)
    assert (offer.product_id, offer.bump_product_id) == (main.pk, None)
    assert (
        next(
            o["bump_product"] for o in api.get(f"/funnels/{tripwire.pk}/offers").json()
        )
        is None
    )

    token = ApiToken.objects.get(workspace=workspace)
    assert _audit(workspace, "offer.") == [
        (
            "offer.create",
            token.pk,
            str(order.pk),
            {
                "after": {
                    "product": main.pk,
                    "bump_product": bump.pk,
                    "bump_headline": "Add the swipe file",
                    "bump_description": "",
                }
            },
        ),
        (
            "offer.update",
            token.pk,
            str(order.pk),
            {"before": {"bump_product": bump.pk}, "after": {"bump_product": None}},
        ),
    ]


def test_offer_change_on_a_live_funnel_is_changes_not_published(
    api, tripwire, workspace, owner_client
):
    """On a published funnel a changed offer reads `changes_not_published` in the
    API and "Changes not published" on the funnel page, as when the offer page
    changes it, until the funnel is published again."""
    offers_fill(tripwire)
    assert api.post(f"/funnels/{tripwire.pk}/publish").status_code == 200
    order = tripwire.steps.get(kind="order")
    offers = api.get(f"/funnels/{tripwire.pk}/offers").json()
    assert [o["changes_not_published"] for o in offers] == [False, False, False]
    cheaper = ProductFactory(workspace=workspace, name="Cheaper", price_minor=100)
    response = api.patch(
        f"/funnels/{tripwire.pk}/offers/{order.pk}", {"product": cheaper.pk}
    )
    assert response.status_code == 200
    assert response.json()["changes_not_published"] is True
    offers = api.get(f"/funnels/{tripwire.pk}/offers").json()
    assert [o["changes_not_published"] for o in offers] == [True, False, False]
    page = owner_client.get(reverse("funnels:detail", args=[tripwire.pk]))
    assert "Changes not published." in page.content.decode()
    # The live page still charges the frozen offer.
    order.refresh_from_db()
    assert order.live_offer.price_minor == 4700
    assert api.post(f"/funnels/{tripwire.pk}/publish").status_code == 200
    offers = api.get(f"/funnels/{tripwire.pk}/offers").json()
    assert [o["changes_not_published"] for o in offers] == [False, False, False]
    page = owner_client.get(reverse("funnels:detail", args=[tripwire.pk]))
    assert "Changes not published." not in page.content.decode()


def test_offer_bad_input_is_a_clear_400_and_changes_nothing(
    api, tripwire, products, workspace, other_workspace
):
    main, _bump = products
    order = tripwire.steps.get(kind="order")
    optin = tripwire.steps.get(kind="optin")
    elsewhere = StepFactory(funnel=FunnelFactory(workspace=workspace), kind="order")
    foreign = ProductFactory(workspace=other_workspace)
    archived = ProductFactory(workspace=workspace, archived_at=timezone.now())
    euro = ProductFactory(workspace=workspace, currency="EUR")
    path = f"/funnels/{tripwire.pk}/offers"
    for body, field, says in (
        ({"step": elsewhere.pk, "product": main.pk}, "step", "No step"),
        ({"step": optin.pk, "product": main.pk}, "step", "only order form"),
        ({"step": order.pk}, "product", "required"),
        ({"step": order.pk, "product": foreign.pk}, "product", "No product"),
        ({"step": order.pk, "product": 987654}, "product", "No product"),
        ({"step": order.pk, "product": archived.pk}, "product", "archived"),
        (
            {"step": order.pk, "product": main.pk, "bump_product": euro.pk},
            "bump_product",
            "one currency",
        ),
        (
            {"step": order.pk, "product": main.pk, "bump_headline": "x" * 201},
            "bump_headline",
            "200",
        ),
        ({"step": "order", "product": main.pk}, "step", "integer"),
    ):
        response = api.post(path, body)
        assert response.status_code == 400, body
        error = error_of(response)
        assert field in error["fields"], body
        assert says in " ".join(error["fields"][field]), error
    response = api.post(path, raw="{oops")
    assert response.status_code == 400
    assert error_of(response)["message"] == "The request body is not valid JSON."
    assert not StepOffer.objects.filter(step__funnel=tripwire).exists()

    StepOffer.objects.create(workspace=workspace, step=order, product=main)
    for body, field in (
        ({"product": None}, "product"),
        ({"product": "lots"}, "product"),
        ({"product": foreign.pk}, "product"),
        ({"bump_product": euro.pk}, "bump_product"),
    ):
        response = api.patch(f"{path}/{order.pk}", body)
        assert response.status_code == 400, body
        assert field in error_of(response)["fields"], body
    offer = StepOffer.objects.get(step=order)
    assert (offer.product_id, offer.bump_product_id) == (main.pk, None)
    assert _audit(workspace, "offer.") == []


def test_offers_of_another_workspace_are_404(
    api, api_stranger, tripwire, products, workspace
):
    """A stranger's token cannot see or write this workspace's offers; a step of
    another funnel, or without an offer, is a 404 on PATCH."""
    main, _bump = products
    order = tripwire.steps.get(kind="order")
    path = f"/funnels/{tripwire.pk}/offers"
    response = api_stranger.post(path, {"step": order.pk, "product": main.pk})
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert api_stranger.patch(f"{path}/{order.pk}", {"product": 1}).status_code == 404
    assert api.patch(f"{path}/{order.pk}", {"product": main.pk}).status_code == 404
    other = StepFactory(funnel=FunnelFactory(workspace=workspace), kind="order")
    StepOffer.objects.create(workspace=workspace, step=other, product=main)
    assert api.patch(f"{path}/{other.pk}", {"bump_headline": "x"}).status_code == 404
    assert not StepOffer.objects.filter(step=order).exists()
    assert StepOffer.objects.get(step=other).bump_headline == ""


def test_read_only_token_cannot_write_offers(api_read, tripwire, products):
    main, _bump = products
    order = tripwire.steps.get(kind="order")
    response = api_read.post(
        f"/funnels/{tripwire.pk}/offers", {"step": order.pk, "product": main.pk}
    )
    assert response.status_code == 403
    assert "read-only" in error_of(response)["message"]
    assert not StepOffer.objects.filter(step=order).exists()


def test_offer_page_saves_through_the_same_service(owner_client, tripwire, products):
    """The offer page's form writes the offer the API writes, audited the same
    way, and refuses a non-selling step's offer with a message."""
    main, bump = products
    order = tripwire.steps.get(kind="order")
    url = reverse("leads:step_offer", args=[order.pk])
    response = owner_client.post(
        url, {"form": "offer", "product": main.pk, "bump_product": bump.pk}
    )
    assert response.status_code == 302
    assert StepOffer.objects.get(step=order).bump_product_id == bump.pk
    entry = AuditEntry.objects.get(action="offer.create")
    assert entry.target_id == str(order.pk) and entry.actor_token_id is None
    optin = tripwire.steps.get(kind="optin")
    response = owner_client.post(
        reverse("leads:step_offer", args=[optin.pk]),
        {"form": "offer", "product": main.pk},
    )
    assert response.status_code == 200
    assert "only order form, upsell and downsell steps" in response.content.decode()
    assert not StepOffer.objects.filter(step=optin).exists()


def test_product_writes_are_audited(api, workspace):
    """Creating, changing and archiving a product each write one audit entry;
    a change that changes nothing writes none."""
    product_id = api.post("/products", {"name": "Course", "price_minor": 9700}).json()[
        "id"
    ]
    api.patch(f"/products/{product_id}", {"price_minor": 4700})
    api.patch(f"/products/{product_id}", {"price_minor": 4700})
    api.patch(f"/products/{product_id}", {"archived": True})
    product = Product.objects.get(pk=product_id)
    rows = _audit(workspace, "product.")
    assert [(a, t) for a, _tok, t, _c in rows] == [
        ("product.create", str(product.pk)),
        ("product.update", str(product.pk)),
        ("product.archive", str(product.pk)),
    ]
    assert rows[1][3] == {
        "before": {"price_minor": 9700},
        "after": {"price_minor": 4700},
    }


def test_products_sync_by_updated_since(api, workspace):
    """`updated_since` lists the products changed (or archived) since then, paged
    by cursor like every list."""
    from datetime import timedelta

    old, changed, archived = (
        ProductFactory(workspace=workspace, name=n) for n in ("Old", "Changed", "Gone")
    )
    Product.objects.update(
        created_at=timezone.now() - timedelta(days=3),
        updated_at=timezone.now() - timedelta(days=3),
    )
    since = timezone.now() - timedelta(days=1)
    api.patch(f"/products/{changed.pk}", {"price_minor": 1})
    api.patch(f"/products/{archived.pk}", {"archived": True})
    new = api.post("/products", {"name": "New", "price_minor": 5}).json()
    assert new["updated_at"] >= new["created_at"]
    query = {"updated_since": since.isoformat()}
    names = [p["name"] for p in api.get("/products", **query).json()["results"]]
    assert sorted(names) == ["Changed", "New"]
    gone = api.get("/products", archived=True, **query).json()["results"]
    assert [p["name"] for p in gone] == ["Gone"]
    assert old.name not in names
    response = api.get("/products", updated_since="last week")
    assert response.status_code == 400
    assert "updated_since" in error_of(response)["fields"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_offers_one_wins_the_other_is_409(workspace):
    """Eight tokens' POSTs for one step's first offer at the same instant (real
    threads, real PostgreSQL): one 201, seven 409s, one offer, one audit entry."""
    import json

    from django.test import Client

    from tests.api.conftest import make_token
    from tests.leads.concurrency import concurrently

    funnel = FunnelFactory(workspace=workspace)
    order = StepFactory(funnel=funnel, kind="order")
    products = [ProductFactory(workspace=workspace) for _ in range(8)]
    secrets = [make_token(workspace, "write", name=f"t{i}") for i in range(8)]

    def create(i: int) -> int:
        client = Client(raise_request_exception=False)
        return client.post(
            f"/api/v1/funnels/{funnel.pk}/offers",
            json.dumps({"step": order.pk, "product": products[i].pk}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {secrets[i]}"},
        ).status_code

    codes = concurrently(8, create)
    assert sorted(codes) == [201] + [409] * 7
    offer = StepOffer.objects.get(step=order)
    assert offer.product_id == products[codes.index(201)].pk
    assert AuditEntry.objects.filter(action="offer.create").count() == 1
