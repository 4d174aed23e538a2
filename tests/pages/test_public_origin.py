"""Published funnels live on their own origin: workspace subdomains and custom
domains share one route table; the app host serves none of it; CSP per origin."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve
from PIL import Image

from accounts import services as accounts
from funnels.models import Product, StepOffer
from funnels.public_forms import form_token_issue
from leads.gateways.testgateway import SUCCESS_CARD
from leads.models import Lead, Order
from pages import documents, services, serving
from pages.public import csp

pytestmark = pytest.mark.django_db

SHOP = "shop.example.test"
PUBLIC = "pages.public.urls"
NOT_FOUND = b"There is no published page at this address."
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tripwire(workspace, owner):
    """The Tripwire template with a product on every selling step, published."""
    funnel = services.funnel_create_from_template(
        workspace=workspace, user=owner, template_key="tripwire", name="Fix"
    )
    for step in funnel.steps.all():
        if step.kind in {"order", "upsell", "downsell"}:
            StepOffer.objects.create(
                workspace=workspace,
                step=step,
                product=Product.objects.create(
                    workspace=workspace, name=step.kind, price_minor=700
                ),
            )
    services.funnel_publish(funnel=funnel, user=owner)
    services.domain_add(workspace=workspace, host=SHOP, funnel=funnel)
    return funnel


def _routes(patterns=None, prefix: str = "") -> dict[str, str]:
    """{url name: route} of the public route table, walked recursively."""
    found: dict[str, str] = {}
    for p in (
        patterns
        if patterns is not None
        else get_resolver("pages.public.urls").url_patterns
    ):
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            found.update(_routes(p.url_patterns, route))
        elif isinstance(p, URLPattern) and p.name:
            found[p.name] = route
    return found


def _path(route: str, funnel: str, step: str, token: str = "") -> str:
    path = route.replace("<slug:funnel_slug>", funnel).replace("<slug:step_slug>", step)
    path = path.replace("<uuid:token>", token).replace("<int:index>", "0")
    path = path.replace("^media/(?P<path>.+)$", "media/none.png")
    return "/" + path


# What each public route is asked (method, step kind it belongs to).
METHODS = {
    "optin": ("post", "optin"),
    "order": ("post", "order"),
    "order_confirm": ("post", "order"),
    "upsell_accept": ("post", "upsell"),
    "upsell_decline": ("post", "upsell"),
}


def _sequence_tokens(funnel) -> dict[str, str]:
    """Real tokens for the sequence e-mail routes (unsubscribe, pixel, link)."""
    from leads.models import SequenceEnrollment, SequenceSend
    from leads.sequences import services as sequences

    workspace = funnel.workspace
    sequence = sequences.sequence_save(workspace=workspace, name="S", funnel=funnel)
    step = sequences.sequence_step_save(
        sequence=sequence, subject="S", body="B", delay_minutes=60
    )
    lead = Lead.objects.create(workspace=workspace, email="seq@example.test")
    enrollment = SequenceEnrollment.objects.create(
        workspace=workspace, sequence=sequence, lead=lead, source="manual"
    )
    send = SequenceSend.objects.create(
        workspace=workspace,
        enrollment=enrollment,
        step=step,
        links=["https://example.test/"],
    )
    return {
        "sequence_unsubscribe": str(enrollment.public_id),
        "sequence_opened": str(send.public_id),
        "sequence_clicked": str(send.public_id),
    }


def test_every_public_route_answers_on_both_kinds_of_public_host(
    tripwire, settings, tmp_path
):
    """Each route of the one route table resolves on a workspace subdomain and on
    a custom domain (with the funnel's prefix left out), and on neither through
    the app host."""
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "none.png").write_bytes(b"\x89PNG")
    routes = _routes()
    assert {"funnel", "step", "optin", "order", "order_contact", "order_confirm"} <= (
        set(routes)
    )
    steps = {s.kind: s for s in tripwire.steps.all()}
    tokens = _sequence_tokens(tripwire)
    seen = set()
    for name, route in routes.items():
        method, kind = METHODS.get(name, ("get", "order"))
        path = _path(route, tripwire.slug, steps[kind].slug, tokens.get(name, ""))
        on_domain = path.removeprefix(f"/{tripwire.slug}") or "/"
        assert resolve(path, urlconf=PUBLIC).url_name == name
        for host, url in (("acme.localhost", path), (SHOP, on_domain)):
            response = getattr(Client(HTTP_HOST=host), method)(url)
            # Routed to the view (which may itself say 204/4xx for a bare request),
            # never the public 404 of an unknown address.
            body = (
                b"".join(response.streaming_content)
                if response.streaming
                else response.content
            )
            assert NOT_FOUND not in body, (host, url)
        if name not in {"robots", "media"}:  # the app host has its own of these
            assert getattr(Client(), method)(path).status_code == 404, path
            with pytest.raises(Resolver404):
                resolve(path)  # the app's own route table
        seen.add(name)
    assert seen == set(routes)
    # The app host asks robots to stay away altogether.
    assert Client().get("/robots.txt").content == b"User-agent: *\nDisallow: /\n"


def test_order_prefill_and_confirmation_work_on_a_custom_domain(tripwire, workspace):
    """The two endpoints the old custom-domain routes missed: contact/ (pre-fill)
    and order/confirm/ (after the bank's check)."""
    steps = {s.kind: s for s in tripwire.steps.all()}
    visitor = Client(HTTP_HOST=SHOP, HTTP_USER_AGENT=BROWSER)
    first = visitor.get("/")
    assert first.status_code == 200
    token = form_token_issue(step_id=steps["optin"].pk, now=time.time() - 10)
    optin = visitor.post(
        f"/{steps['optin'].slug}/optin/",
        {"email": "ada@example.com", "first_name": "Ada", "_of": token},
    )
    assert optin.status_code == 302
    assert not optin["Location"].startswith(f"/{tripwire.slug}/")
    contact = visitor.get(f"/{steps['order'].slug}/contact/")
    assert contact.status_code == 200
    assert contact.json()["email"] == "ada@example.com"
    token = form_token_issue(step_id=steps["order"].pk, now=time.time() - 10)
    bought = visitor.post(
        f"/{steps['order'].slug}/order/",
        {"email": "ada@example.com", "card": SUCCESS_CARD, "_of": token},
    )
    assert bought.status_code == 302, bought.content[:300]
    assert bought["Location"] == f"/{steps['upsell'].slug}/"
    order = Order.objects.get(workspace=workspace)
    confirm = visitor.post(f"/{steps['order'].slug}/order/confirm/")
    assert confirm.status_code == 302, confirm.content[:300]
    assert confirm["Location"] == f"/{steps['upsell'].slug}/"
    order.refresh_from_db()
    assert order.status == "paid"


def test_a_stranger_host_cannot_post_to_this_workspace(tripwire, other_workspace):
    """Globex's host does not reach Acme's steps, even with the right slugs."""
    optin = tripwire.steps.get(kind="optin")
    token = form_token_issue(step_id=optin.pk, now=time.time() - 10)
    response = Client(HTTP_HOST="globex.localhost").post(
        f"/{tripwire.slug}/{optin.slug}/optin/", {"email": "x@y.co", "_of": token}
    )
    assert response.status_code == 404
    assert not Lead.objects.exists()


def test_old_workspace_slug_redirects_to_the_new_host(tripwire, workspace, owner):
    membership = owner.memberships.get()
    accounts.workspace_slug_change(membership=membership, slug="acme-labs")
    serving.local_caches_clear()
    moved = Client(HTTP_HOST="acme.localhost").get(f"/{tripwire.slug}/?utm_source=x")
    assert moved.status_code == 301
    assert (
        moved["Location"] == f"http://acme-labs.localhost/{tripwire.slug}/?utm_source=x"
    )
    assert (
        Client(HTTP_HOST="acme-labs.localhost").get(f"/{tripwire.slug}/").status_code
        == 200
    )
    # Changing back reclaims the old label; nobody else may take it meanwhile.
    with pytest.raises(Exception, match="taken"):
        accounts.workspace_slug_check("acme-labs")
    accounts.workspace_slug_change(membership=membership, slug="acme")
    serving.local_caches_clear()
    assert (
        Client(HTTP_HOST="acme.localhost").get(f"/{tripwire.slug}/").status_code == 200
    )


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("Has Space", "lower-case letters"),
        ("-edge", "lower-case letters"),
        ("ab", "lower-case letters"),
        ("xn--abc", "lower-case letters"),
        ("a" * 64, "lower-case letters"),
        ("www", "reserved"),
        ("globex", "taken — try globex-2"),
    ],
)
def test_workspace_slug_must_be_a_free_dns_label(owner, other_workspace, slug, message):
    membership = owner.memberships.get()
    with pytest.raises(Exception, match=message):
        accounts.workspace_slug_change(membership=membership, slug=slug)


def test_workspace_settings_change_the_public_address(owner_client, workspace):
    page = owner_client.get("/settings/")
    assert 'name="slug" id="id_slug" value="acme"' in page.content.decode()
    data = {
        "name": "Acme",
        "slug": "www",
        "timezone": "UTC",
        "event_retention_days": 395,
    }
    refused = owner_client.post("/settings/", data)
    assert refused.status_code == 422
    assert "“www” is reserved" in refused.content.decode()
    workspace.refresh_from_db()
    assert workspace.slug == "acme"
    assert (
        owner_client.post("/settings/", {**data, "slug": "acme-co"}).status_code == 302
    )
    workspace.refresh_from_db()
    assert workspace.slug == "acme-co"
    assert workspace.slug_aliases.get().slug == "acme"


def test_new_workspaces_get_a_readable_unique_slug(owner):
    first = accounts.workspace_create(name="Acme!", owner=owner)
    second = accounts.workspace_create(name="ACME", owner=owner)
    short = accounts.workspace_create(name="X", owner=owner)
    assert (first.slug, second.slug) == ("acme-2", "acme-3")  # fixture took "acme"
    assert short.slug == "x-workspace"


def test_an_uploaded_image_on_a_published_page_loads_on_its_host(
    tripwire, owner, workspace, settings, tmp_path
):
    """With DEBUG off (as in production) the page's image is served on the public
    host, cached for a year (names are content-addressed)."""
    assert settings.DEBUG is False
    settings.MEDIA_ROOT = tmp_path
    buf = io.BytesIO()
    Image.new("RGB", (640, 360), "#336699").save(buf, "PNG")
    image = services.image_upload(
        workspace=workspace,
        upload=SimpleUploadedFile("hero.png", buf.getvalue(), content_type="image/png"),
        alt_text="Hero",
    )
    page = tripwire.steps.get(kind="optin").pages.get()
    services.page_edit(
        page=page,
        revision=None,
        operation=lambda doc: documents.add_block(
            doc, documents.new_block("image", {"image_id": image.pk, "alt": "Hero"})
        ),
    )
    services.funnel_publish(funnel=tripwire, user=owner)
    html = Client(HTTP_HOST="acme.localhost").get(f"/{tripwire.slug}/").content
    src = re.search(rb'<img[^>]+src="([^"]+)"[^>]+alt="Hero"', html)[1].decode()
    assert src.startswith("/media/")
    for host in ("acme.localhost", SHOP):
        response = Client(HTTP_HOST=host).get(src)
        assert response.status_code == 200, host
        assert response["Content-Type"].startswith("image/")
        assert "immutable" in response["Cache-Control"]
        assert Image.open(io.BytesIO(b"".join(response.streaming_content)))


# Content-Security-Policy ------------------------------------------------------


def test_admin_pages_send_a_strict_policy(owner_client):
    policy = owner_client.get("/funnels/")["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert "'unsafe-eval'" not in policy
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"


def _template_files():
    for folder in ("templates", "accounts", "funnels", "pages", "leads", "analytics"):
        yield from (ROOT / folder).rglob("*.html")


def test_no_template_has_inline_script_or_handlers():
    """Inline scripts would need 'unsafe-inline' in the admin's policy."""
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
    handler = re.compile(r"\son[a-z]+\s*=\s*[\"']", re.I)
    offenders = [
        str(path.relative_to(ROOT))
        for path in _template_files()
        if inline.search(path.read_text()) or handler.search(path.read_text())
    ]
    assert offenders == []


def test_public_page_policy_allows_its_own_code_hosts_but_never_the_app(
    tripwire, owner, settings
):
    settings.SITE_URL = "https://app.example.com"
    settings.APP_HOSTS = ["app.example.com"]
    optin = tripwire.steps.get(kind="optin")
    page = optin.pages.get()
    page.head_code = (
        '<script async src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>'
        '<script>fetch("https://app.example.com/leads/export.csv")</script>'
    )
    page.save()
    services.funnel_publish(funnel=tripwire, user=owner)
    response = Client(HTTP_HOST="acme.localhost").get(f"/{tripwire.slug}/")
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert "https://www.googletagmanager.com" in directives["script-src"]
    assert "'unsafe-inline'" in directives["script-src"]
    assert "https://*.google-analytics.com" in directives["connect-src"]
    assert "app.example.com" not in policy
    # A page without head code runs only its own files.
    thanks = tripwire.steps.get(kind="thankyou")
    plain = Client(HTTP_HOST="acme.localhost").get(f"/{tripwire.slug}/{thanks.slug}/")
    plain_directives = dict(
        d.strip().split(" ", 1) for d in plain["Content-Security-Policy"].split(";")
    )
    assert plain_directives["script-src"] == "'self'"


def test_code_sources_skip_app_hosts_and_add_companions(settings):
    settings.SITE_URL = "https://app.example.com"
    settings.APP_HOSTS = ["app.example.com"]
    code = (
        "<script src='//connect.facebook.net/en_US/fbevents.js'></script>"
        "<img src='https://app.example.com/x'>"
    )
    sources = csp.code_sources(code)
    assert "https://connect.facebook.net" in sources
    assert "https://www.facebook.com" in sources
    assert not any("app.example.com" in s for s in sources)


# Outages ----------------------------------------------------------------------


@pytest.fixture
def database_down():
    """Make PostgreSQL unreachable for this process (a closed port), as a real
    outage looks to Django: every new connection fails."""
    from django.db import connection

    def down():
        connection.close()
        connection.settings_dict["HOST"] = "127.0.0.1"
        connection.settings_dict["PORT"] = "1"

    saved = dict(connection.settings_dict)
    yield down
    connection.close()
    connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_published_pages_keep_serving_with_the_database_down(
    tripwire, database_down, monkeypatch
):
    """Pages already published answer from the cache when PostgreSQL is down, in
    a warm process and in one that never saw them (the last known answers kept in
    Redis); a form post answers a friendly 503, not a 500."""
    thanks = tripwire.steps.get(kind="thankyou")
    optin = tripwire.steps.get(kind="optin")
    client = Client(HTTP_HOST="acme.localhost", HTTP_USER_AGENT=BROWSER)
    assert client.get(f"/{tripwire.slug}/").status_code == 200
    assert client.get(f"/{tripwire.slug}/{thanks.slug}/").status_code == 200
    monkeypatch.setattr(serving, "LOCAL_TTL", 0.0)  # every lookup goes to the DB
    database_down()
    warm = client.get(f"/{tripwire.slug}/")
    assert warm.status_code == 200 and b"<form" in warm.content
    serving.local_caches_clear()  # a new worker process: nothing in memory
    cold = Client(HTTP_HOST="acme.localhost", HTTP_USER_AGENT=BROWSER)
    assert cold.get(f"/{tripwire.slug}/{thanks.slug}/").status_code == 200
    assert cold.get(f"/{tripwire.slug}/no-such-step/").status_code == 503
    token = form_token_issue(step_id=optin.pk, now=time.time() - 10)
    post = cold.post(
        f"/{tripwire.slug}/{optin.slug}/optin/", {"email": "a@b.co", "_of": token}
    )
    assert post.status_code == 503
