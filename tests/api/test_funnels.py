"""API: funnels, templates, publishing, pages, products and offers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken, AuditEntry
from funnels.models import Funnel, Product, StepOffer
from pages.models import Page
from pages.services import funnel_create_from_template
from tests.api.conftest import error_of
from tests.factories import FunnelFactory, ProductFactory, offers_fill

pytestmark = pytest.mark.django_db


@pytest.fixture
def tripwire(workspace):
    return funnel_create_from_template(
        workspace=workspace, user=None, template_key="tripwire", name="Fix Funnel"
    )


@pytest.fixture
def foreign_funnel(other_workspace):
    return funnel_create_from_template(
        workspace=other_workspace, user=None, template_key="tripwire", name="Theirs"
    )


# ---------------------------------------------------------------- funnels
def test_funnel_list_pages_by_cursor_and_filters(api, workspace, other_workspace):
    """Newest first, `limit` a page, `next_cursor` until null; another workspace's
    funnels never appear; archived ones only on request; updated_since filters."""
    old = FunnelFactory(workspace=workspace, name="Old")
    Funnel.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=3),
        updated_at=timezone.now() - timedelta(days=3),
    )
    made = [FunnelFactory(workspace=workspace, name=f"F{i}") for i in range(4)]
    FunnelFactory(workspace=other_workspace, name="Foreign")
    archived = FunnelFactory(workspace=workspace, archived_at=timezone.now())
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get("/funnels", **query).json()
        assert len(body["results"]) <= 2
        seen += [f["name"] for f in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f.name for f in reversed(made)] + ["Old"]
    assert [f["id"] for f in api.get("/funnels", archived=True).json()["results"]] == [
        archived.pk
    ]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    recent = api.get("/funnels", updated_since=since).json()["results"]
    assert "Old" not in [f["name"] for f in recent] and len(recent) == 4


def test_funnel_list_bad_input(api):
    for query, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"updated_since": "yesterday"}, "updated_since"),
    ):
        response = api.get("/funnels", **query)
        assert response.status_code == 400, query
        assert field in error_of(response)["fields"], query


def test_funnel_detail_has_steps_and_graph(api, tripwire):
    body = api.get(f"/funnels/{tripwire.pk}").json()
    steps = {s["slug"]: s for s in body["steps"]}
    assert [s["kind"] for s in body["steps"]] == [
        "optin",
        "order",
        "upsell",
        "downsell",
        "thankyou",
    ]
    upsell = next(s for s in body["steps"] if s["kind"] == "upsell")
    downsell = next(s for s in body["steps"] if s["kind"] == "downsell")
    thanks = next(s for s in body["steps"] if s["kind"] == "thankyou")
    assert upsell["decline_target"] == downsell["id"]
    edges = {(e["source"], e["target"], e["kind"]) for e in body["graph"]["edges"]}
    assert (upsell["id"], downsell["id"], "decline") in edges
    assert (upsell["id"], thanks["id"], "accept") in edges
    assert body["graph"]["entry_step"] == body["steps"][0]["id"]
    branch = {n["step"] for n in body["graph"]["nodes"] if n["branch"]}
    assert branch == {downsell["id"]}
    assert steps  # slugs are unique per funnel


def test_foreign_funnel_is_404(api, foreign_funnel):
    for path in (
        f"/funnels/{foreign_funnel.pk}",
        f"/funnels/{foreign_funnel.pk}/offers",
        f"/funnels/{foreign_funnel.pk}/pages",
        f"/funnels/{foreign_funnel.pk}/stats",
    ):
        response = api.get(path)
        assert response.status_code == 404, path
        assert error_of(response) == {
            "status": 404,
            "code": "not_found",
            "message": "Not found.",
            "fields": {},
        }
    for path in ("publish", "unpublish"):
        response = api.post(f"/funnels/{foreign_funnel.pk}/{path}")
        assert response.status_code == 404
    assert not Funnel.objects.get(pk=foreign_funnel.pk).is_published


# ---------------------------------------------------------------- templates
def test_templates_and_create_from_template(api, workspace):
    from pages.selectors import funnel_templates

    templates = api.get("/funnel-templates").json()
    assert [t["key"] for t in templates] == list(funnel_templates())
    tripwire = next(t for t in templates if t["key"] == "tripwire")
    assert tripwire["steps"][:2] == ["Opt-in", "Order form"]
    response = api.post("/funnel-templates/webinar/funnels", {"name": "Spring webinar"})
    assert response.status_code == 201
    body = response.json()
    funnel = Funnel.objects.get(pk=body["id"], workspace=workspace)
    assert body["name"] == funnel.name == "Spring webinar"
    assert len(body["steps"]) == funnel.steps.count() > 1
    blank = api.post("/funnel-templates/blank/funnels", {"name": "Empty"}).json()
    assert blank["steps"] == [] and blank["name"] == "Empty"


def test_create_from_template_bad_input(api, workspace):
    response = api.post("/funnel-templates/tripwire/funnels", {"name": "x" * 121})
    assert response.status_code == 400
    assert "name" in error_of(response)["fields"]
    response = api.post("/funnel-templates/nope/funnels", {"name": "X"})
    assert response.status_code == 404
    response = api.post("/funnel-templates/tripwire/funnels", raw="{oops")
    assert response.status_code == 400
    assert error_of(response)["message"] == "The request body is not valid JSON."
    assert not Funnel.objects.filter(workspace=workspace).exists()


# ---------------------------------------------------------------- publishing
def test_publish_and_unpublish_are_audited(api, tripwire, workspace):
    offers_fill(tripwire)  # selling steps need a product to be published
    response = api.post(f"/funnels/{tripwire.pk}/publish")
    assert response.status_code == 200
    body = response.json()
    assert body["published"] is True
    assert len(body["versions"]) == Page.objects.filter(step__funnel=tripwire).count()
    assert {v["number"] for v in body["versions"]} == {1}
    tripwire.refresh_from_db()
    assert tripwire.is_published
    response = api.post(f"/funnels/{tripwire.pk}/unpublish")
    assert response.json() == {
        "funnel": tripwire.pk,
        "published": False,
        "published_at": None,
        "versions": [],
    }
    token = ApiToken.objects.get(workspace=workspace)
    entries = list(
        AuditEntry.objects.filter(workspace=workspace, action__startswith="funnel.")
        .order_by("id")
        .values_list("action", "actor_label", "actor_token", "target_id")
    )
    label = f"API token “write token” ({token.prefix}…)"
    assert entries == [
        ("funnel.publish", label, token.pk, str(tripwire.pk)),
        ("funnel.unpublish", label, token.pk, str(tripwire.pk)),
    ]


def test_publish_refused_without_steps(api, workspace):
    funnel = FunnelFactory(workspace=workspace)
    response = api.post(f"/funnels/{funnel.pk}/publish")
    assert response.status_code == 400
    assert error_of(response)["message"] == "Add at least one step before publishing."


# ---------------------------------------------------------------- pages
def test_pages_list_read_and_publish(api, tripwire):
    offers_fill(tripwire)  # publishing refuses selling steps without a product
    pages = api.get(f"/funnels/{tripwire.pk}/pages").json()
    assert len(pages) == 5 and all(p["published_version"] is None for p in pages)
    page = api.get(f"/pages/{pages[0]['id']}").json()
    db_page = Page.objects.get(pk=pages[0]["id"])
    assert page["document"] == db_page.document
    assert page["published"] is None and page["funnel"] == tripwire.pk
    response = api.post(f"/pages/{pages[0]['id']}/publish")
    assert response.status_code == 200
    page = api.get(f"/pages/{pages[0]['id']}").json()
    assert page["published"]["number"] == 1
    assert page["published"]["document"] == db_page.document
    assert page["published_version"] == 1


def test_foreign_page_is_404(api, foreign_funnel):
    page = Page.objects.filter(step__funnel=foreign_funnel).first()
    assert api.get(f"/pages/{page.pk}").status_code == 404
    assert api.post(f"/pages/{page.pk}/publish").status_code == 404
    assert Page.objects.get(pk=page.pk).published_version_id is None


# ---------------------------------------------------------------- products
def test_products_crud(api, workspace, other_workspace):
    ProductFactory(workspace=other_workspace, name="Foreign")
    response = api.post(
        "/products",
        {"name": "Course", "price_minor": 9700, "currency": "eur"},
    )
    assert response.status_code == 201
    body = response.json()
    product = Product.objects.get(pk=body["id"], workspace=workspace)
    assert (product.price_minor, product.currency, body["currency"]) == (
        9700,
        "EUR",
        "EUR",
    )
    assert [p["name"] for p in api.get("/products").json()["results"]] == ["Course"]
    assert api.get(f"/products/{product.pk}").json()["price_minor"] == 9700
    response = api.patch(f"/products/{product.pk}", {"price_minor": 4700})
    assert response.json()["price_minor"] == 4700
    assert response.json()["name"] == "Course"
    response = api.patch(f"/products/{product.pk}", {"archived": True})
    assert response.json()["archived"] is True
    assert api.get("/products").json()["results"] == []
    assert len(api.get("/products", archived=True).json()["results"]) == 1


def test_products_bad_input(api, workspace):
    for body, field in (
        ({"name": "", "price_minor": 1}, "name"),
        ({"name": "X", "price_minor": -1}, "price_minor"),
        ({"name": "X", "price_minor": 1, "currency": "EURO"}, "currency"),
        ({"name": "X"}, "price_minor"),
        ({"name": "X", "price_minor": 1, "billing": "weekly"}, "billing"),
    ):
        response = api.post("/products", body)
        assert response.status_code == 400, body
        assert field in error_of(response)["fields"], body
    product = ProductFactory(workspace=workspace)
    response = api.patch(f"/products/{product.pk}", {"price_minor": "lots"})
    assert response.status_code == 400
    response = api.get("/products", limit=500)
    assert response.status_code == 400
    assert not Product.objects.exclude(pk=product.pk).exists()


def test_foreign_product_is_404(api, other_workspace):
    product = ProductFactory(workspace=other_workspace, price_minor=100)
    assert api.get(f"/products/{product.pk}").status_code == 404
    assert api.patch(f"/products/{product.pk}", {"price_minor": 1}).status_code == 404
    product.refresh_from_db()
    assert product.price_minor == 100


def test_offers(api, tripwire, workspace):
    order_step = tripwire.steps.get(kind="order")
    main = ProductFactory(workspace=workspace, name="Checklist", price_minor=700)
    bump = ProductFactory(workspace=workspace, name="Swipe", price_minor=900)
    StepOffer.objects.create(
        workspace=workspace,
        step=order_step,
        product=main,
        bump_product=bump,
        bump_headline="Add it",
    )
    offers = api.get(f"/funnels/{tripwire.pk}/offers").json()
    assert [o["step_kind"] for o in offers] == ["order", "upsell", "downsell"]
    assert offers[0]["product"]["name"] == "Checklist"
    assert offers[0]["bump_product"]["price_minor"] == 900
    assert offers[0]["bump_headline"] == "Add it"
    assert offers[1]["product"] is None


def test_publish_refused_by_the_speed_budget_is_a_400_and_audited(
    api, tripwire, workspace
):
    """A workspace that blocks publishing over its page-speed budget: the API's
    publish is a 400 saying why, nothing goes live, and the refusal is in the
    audit log under the token."""
    from pages.models import SpeedBudget

    offers_fill(tripwire)
    SpeedBudget.objects.create(workspace=workspace, mode="block")
    Page.objects.filter(step__funnel=tripwire).update(
        head_code='<script src="https://tags.example.com/t.js"></script>'
    )
    response = api.post(f"/funnels/{tripwire.pk}/publish")
    assert response.status_code == 400
    assert "over the workspace's page-speed budget" in error_of(response)["message"]
    tripwire.refresh_from_db()
    assert not tripwire.is_published
    assert not Page.objects.filter(
        step__funnel=tripwire, published_version__isnull=False
    ).exists()
    token = ApiToken.objects.get(workspace=workspace)
    entry = AuditEntry.objects.get(workspace=workspace, action__startswith="funnel.")
    assert (entry.action, entry.actor_token_id, entry.target_id) == (
        "funnel.publish_refused",
        token.pk,
        str(tripwire.pk),
    )
    assert entry.changes["after"]["over_budget"] == ["render_blocking"]
