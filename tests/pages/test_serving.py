"""Public serving through the production WSGI application (config/wsgi.py): pages
on workspace hosts and custom domains, robots.txt / sitemap.xml and the split-test
variant pick."""

from __future__ import annotations

import io
import re
import uuid
from collections import Counter
from urllib.parse import urlencode

import pytest
from django.core.exceptions import ValidationError
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client

from analytics import ingest
from analytics import services as analytics
from analytics.models import Event
from config.wsgi import application
from funnels.models import Step
from funnels.public_forms import form_token_issue, form_token_read
from leads.models import Lead, Submission
from pages import services, serving
from pages.models import Domain, Page

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537"


class Reply:
    def __init__(self, status: str, headers: list, body: bytes) -> None:
        self.status_code = int(status.split()[0])
        self.header_list = headers
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        self.text = body.decode()


def wsgi(
    path: str,
    *,
    host: str = "acme.localhost",
    method: str = "GET",
    headers: dict | None = None,
    data: bytes = b"",
    query: str = "",
) -> Reply:
    """One request through the production WSGI application (not Django's client)."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": host,
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_USER_AGENT": BROWSER,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(data)),
    }
    if data:
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    seen: dict = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = status, response_headers

    # As Django's test client does: keep the test's database connection open.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        chunks = application(environ, start_response)
        body = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return Reply(seen["status"], seen["headers"], body)


@pytest.fixture(autouse=True)
def _fresh():
    ingest.redis_reset()
    ingest.partitions_forget()
    serving.local_caches_clear()
    client = ingest.redis_client()
    client.delete(ingest.STREAM_KEY)
    yield
    serving.local_caches_clear()


@pytest.fixture
def funnel(workspace, owner):
    funnel = services.funnel_create_from_template(
        workspace=workspace, user=owner, template_key="lead-magnet", name="Guide"
    )
    services.funnel_publish(funnel=funnel, user=owner)
    return funnel


def _steps(funnel):
    return list(funnel.steps.order_by("position", "id"))


def _views(**filters) -> list[Event]:
    analytics.events_flush()
    return list(Event.objects.filter(kind="view", **filters).order_by("occurred_at"))


# Lean path ------------------------------------------------------------------


def test_public_page_response_headers_cookie_and_view(funnel, workspace):
    """A published page gets Django's security headers, its own CSP, the visitor
    cookie (Django's formatting), no session cookie, and one view per request."""
    first = _steps(funnel)[0]
    reply = wsgi(f"/{funnel.slug}/")
    assert reply.status_code == 200
    headers = dict(reply.headers)
    cookie = headers.pop("set-cookie").strip()
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "private, no-cache"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert int(headers["content-length"]) == len(reply.body)
    assert cookie.startswith(f"ofv_{workspace.public_id}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "sessionid" not in cookie and "csrftoken" not in cookie
    # Forms carry a fresh signed token, never the placeholder.
    assert "__OF_FORM_TOKEN__" not in reply.text
    assert re.search(r'name="_of" value="[^"]+:[^"]+"', reply.text)
    again = Client(HTTP_USER_AGENT=BROWSER, HTTP_HOST="acme.localhost")
    assert again.get(f"/{funnel.slug}/").status_code == 200
    views = _views(workspace_id=workspace.pk)
    page = first.pages.get()
    assert [(e.step_id, e.variant_id, e.page_version_id) for e in views] == [
        (first.pk, page.pk, page.published_version_id)
    ] * 2


def test_lean_path_does_not_count_bots_head_or_prefetch(funnel, workspace):
    # (The WSGI server drops a HEAD response's body.)
    assert wsgi(f"/{funnel.slug}/", method="HEAD").status_code == 200
    bot = wsgi(f"/{funnel.slug}/", headers={"User-Agent": "Googlebot/2.1"})
    assert bot.status_code == 200 and "set-cookie" not in bot.headers
    wsgi(f"/{funnel.slug}/", headers={"Sec-Purpose": "prefetch"})
    assert _views(workspace_id=workspace.pk) == []


def test_returning_visitor_keeps_cookie_and_gets_one_view_each(funnel, workspace):
    first = wsgi(f"/{funnel.slug}/")
    value = first.headers["set-cookie"].split(";")[0]
    again = wsgi(f"/{funnel.slug}/", headers={"Cookie": value})
    assert "set-cookie" not in again.headers
    views = _views(workspace_id=workspace.pk)
    assert len(views) == 2 and views[0].visitor_id == views[1].visitor_id


def test_lean_path_with_redis_down_still_logs_and_ships_every_view(
    funnel, workspace, settings
):
    """Redis is not on the view path: the view is a log line the shipper stores."""
    from analytics import shipper

    wsgi(f"/{funnel.slug}/")  # warm the caches while Redis is up
    settings.ANALYTICS_REDIS_URL = "redis://127.0.0.1:1/0"
    ingest.redis_reset()
    try:
        reply = wsgi(f"/{funnel.slug}/", query="utm_source=news")
        assert reply.status_code == 200 and "set-cookie" in reply.headers
        assert shipper.ship_once() == 2
        stored = list(Event.objects.filter(workspace_id=workspace.pk, kind="view"))
        assert len(stored) == 2
    finally:
        settings.ANALYTICS_REDIS_URL = None
        ingest.redis_reset()


def test_drop_ip_setting_is_honoured_on_the_lean_path(funnel, workspace):
    from analytics.models import Visitor

    workspace.drop_ip_addresses = True
    workspace.save()
    serving.generation_bump()
    wsgi(f"/{funnel.slug}/")
    analytics.events_flush()
    assert list(Visitor.objects.values_list("ip", flat=True)) == [None]


def test_publish_elsewhere_is_seen_at_the_next_round_trip(funnel, owner):
    """Another process's publish (the generation key) drops this one's caches."""
    wsgi(f"/{funnel.slug}/")
    assert serving._local.entries
    ingest.redis_client().incr(serving.GEN_KEY)
    wsgi(f"/{funnel.slug}/")  # learns the new generation in its round trip
    assert not any(
        hit[1] == serving._local.gen and key[0] == "ref"
        for key, hit in serving._local.entries.items()
    )
    services.funnel_unpublish(funnel=funnel)
    assert wsgi(f"/{funnel.slug}/").status_code == 404


def test_app_host_serves_no_funnel_page(funnel, owner):
    """The admin's origin never serves a published page or its endpoints."""
    optin = _steps(funnel)[0]
    for path in (f"/{funnel.slug}/", f"/{funnel.slug}/{optin.slug}/"):
        assert wsgi(path, host="testserver").status_code == 404
    post = wsgi(f"/{funnel.slug}/{optin.slug}/optin/", host="testserver", method="POST")
    assert post.status_code == 404
    client = Client()
    client.force_login(owner)
    assert client.get("/leads/").status_code == 200


def test_another_workspace_host_does_not_serve_this_funnel(funnel, other_workspace):
    """globex.localhost/guide/ is Globex's address: Acme's guide is not there."""
    assert wsgi(f"/{funnel.slug}/", host="acme.localhost").status_code == 200
    assert wsgi(f"/{funnel.slug}/", host="globex.localhost").status_code == 404
    assert wsgi(f"/{funnel.slug}/", host="nobody.localhost").status_code == 404


# Hosts and custom domains ----------------------------------------------------


def test_unknown_host_is_404_not_400(funnel, settings):
    settings.APP_HOSTS = ["testserver"]
    reply = wsgi(f"/{funnel.slug}/", host="evil.example")
    assert reply.status_code == 404
    assert "Page not found" in reply.text
    assert wsgi("/login/", host="evil.example").status_code == 404
    assert wsgi("/login/", host="testserver").status_code == 200


@pytest.fixture
def shop(funnel, workspace):
    domain = services.domain_add(
        workspace=workspace, host="Shop.Example.TEST", funnel=funnel
    )
    return domain


def test_custom_domain_serves_its_funnel(shop, funnel, workspace, settings):
    settings.APP_HOSTS = ["testserver"]
    optin, thanks = _steps(funnel)
    assert shop.host == "shop.example.test"
    home = wsgi("/", host="shop.example.test")
    assert home.status_code == 200
    assert 'action="/' + optin.slug + '/optin/"' in home.text
    assert f'"/{funnel.slug}/' not in home.text
    step = wsgi(f"/{thanks.slug}/", host="shop.example.test:443")
    assert step.status_code == 200
    # Links rendered for the workspace host keep working here.
    assert (
        wsgi(f"/{funnel.slug}/{thanks.slug}/", host="shop.example.test").status_code
        == 200
    )
    assert wsgi("/nope/", host="shop.example.test").status_code == 404
    # The admin app does not answer on a custom domain.
    assert wsgi("/login/", host="shop.example.test").status_code == 404
    assert wsgi("/admin/", host="shop.example.test").status_code == 404
    assert wsgi("/static/css/page.css", host="shop.example.test").status_code == 200
    views = _views(workspace_id=workspace.pk)
    assert [v.step_id for v in views] == [optin.pk, thanks.pk, thanks.pk]


def test_optin_from_a_custom_domain_stays_on_it(shop, funnel, workspace, settings):
    settings.APP_HOSTS = ["testserver"]
    optin, thanks = _steps(funnel)
    page = wsgi("/", host="shop.example.test")
    token = re.search(r'name="_of" value="([^"]+)"', page.text)[1]
    cookie = page.headers["set-cookie"].split(";")[0]
    # The form refuses posts faster than a person: the same token, shown 60 s ago.
    issued = form_token_read(token)
    stale = form_token_issue(
        step_id=optin.pk, variant_id=issued.variant_id, now=issued.issued_at - 60
    )
    body = urlencode({"_of": stale, "email": "ada@example.com", "first_name": "Ada"})
    reply = wsgi(
        f"/{optin.slug}/optin/",
        host="shop.example.test",
        method="POST",
        data=body.encode(),
        headers={"Cookie": cookie, "Referer": "https://shop.example.test/"},
    )
    assert reply.status_code == 302, reply.text[:500]
    assert reply.headers["location"] == f"/{thanks.slug}/"
    lead = Lead.objects.get(workspace=workspace)
    assert lead.email == "ada@example.com"
    submission = Submission.objects.get(lead=lead)
    assert submission.variant_id == optin.pages.get().pk


def test_domain_check_for_the_tls_proxy(shop, workspace):
    """The proxy may get certificates for connected domains and workspace hosts,
    nothing else; it asks the app host."""

    def check(domain: str) -> int:
        return wsgi(
            "/domains/check", host="testserver", query=f"domain={domain}"
        ).status_code

    assert check("shop.example.test") == 200
    assert check("SHOP.example.test.") == 200
    assert check("acme.localhost") == 200
    assert check("nobody.localhost") == 404
    assert check("other.test") == 404
    assert check("%00%ff") == 404
    assert Client().get("/domains/check?domain=shop.example.test").status_code == 200
    # Not a public route: the public host does not answer it.
    assert wsgi("/domains/check/", query="domain=shop.example.test").status_code == 404


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Shop.Example.com", "shop.example.com"),
        ("https://shop.example.com/path", "shop.example.com"),
        ("shop.example.com.", "shop.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_domain_names_are_normalised(raw, stored):
    assert services.domain_normalise(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "localhost",
        "shop",
        "-x.example.com",
        "a..b",
        "1.2.3.4",
        "x.com:8080",
        "a b.com",
        "x" * 300 + ".com",
    ],
)
def test_bad_domain_names_are_refused(raw):
    with pytest.raises(ValidationError):
        services.domain_normalise(raw)


def test_domain_add_refuses_app_host_duplicates_and_foreign_funnels(
    funnel, workspace, other_workspace, settings
):
    settings.ALLOWED_HOSTS = ["funnels.example.com"]
    settings.SITE_URL = "https://funnels.example.com"
    with pytest.raises(ValidationError, match="this app's own address"):
        services.domain_add(
            workspace=workspace, host="funnels.example.com", funnel=funnel
        )
    services.domain_add(workspace=workspace, host="shop.example.com", funnel=funnel)
    with pytest.raises(ValidationError, match="already connected to Guide"):
        services.domain_add(workspace=workspace, host="SHOP.example.com", funnel=funnel)
    from tests.factories import FunnelFactory

    theirs = FunnelFactory(workspace=other_workspace)
    with pytest.raises(ValidationError, match="another workspace"):
        services.domain_add(
            workspace=other_workspace, host="shop.example.com", funnel=theirs
        )
    with pytest.raises(ValidationError, match="Choose one of your funnels"):
        services.domain_add(workspace=workspace, host="x.example.com", funnel=theirs)


def test_domains_settings_page(owner_client, funnel, workspace):
    url = "/settings/domains/"
    page = owner_client.get(url)
    assert page.status_code == 200 and "No custom domains yet" in page.content.decode()
    bad = owner_client.post(url, {"host": "not a domain", "funnel": funnel.pk})
    assert bad.status_code == 422
    assert "is not a valid domain name" in bad.content.decode()
    ok = owner_client.post(url, {"host": "Go.Example.com", "funnel": funnel.pk})
    assert ok.status_code == 302
    listing = owner_client.get(url).content.decode()
    # The CNAME target is the workspace's own public host (wildcard DNS covers it).
    assert (
        "go.example.com" in listing
        and "CNAME" in listing
        and "acme.localhost" in listing
    )
    again = owner_client.post(url, {"host": "go.example.com", "funnel": funnel.pk})
    assert again.status_code == 422 and "already connected" in again.content.decode()
    domain = Domain.objects.get()
    assert (
        owner_client.post(f"/settings/domains/{domain.pk}/delete/").status_code == 302
    )
    assert not Domain.objects.exists()


def test_editor_cannot_add_domains(client, member, funnel):
    client.force_login(member)
    response = client.post(
        "/settings/domains/", {"host": "a.example.com", "funnel": funnel.pk}
    )
    assert response.status_code == 403


# robots.txt and sitemap.xml --------------------------------------------------


def test_robots_and_sitemap_honour_noindex(shop, funnel, workspace, settings):
    settings.APP_HOSTS = ["testserver"]
    _optin, thanks = _steps(funnel)
    Step.objects.filter(pk=thanks.pk).update(kind="sales")  # indexable by kind
    Page.objects.filter(step=thanks).update(noindex=True)
    serving.generation_bump()
    robots = wsgi("/robots.txt", host="shop.example.test")
    assert robots.headers["content-type"] == "text/plain; charset=utf-8"
    assert robots.text.splitlines() == [
        "User-agent: *",
        f"Disallow: /{thanks.slug}/",
        "",
        "Sitemap: http://shop.example.test/sitemap.xml",
    ]
    sitemap = wsgi("/sitemap.xml", host="shop.example.test").text
    assert re.findall(r"<loc>([^<]+)</loc>", sitemap) == ["http://shop.example.test/"]
    site = wsgi("/sitemap.xml").text
    assert re.findall(r"<loc>([^<]+)</loc>", site) == [
        f"http://acme.localhost/{funnel.slug}/"
    ]
    site_robots = wsgi("/robots.txt").text
    assert f"Disallow: /{funnel.slug}/{thanks.slug}/" in site_robots
    assert "Sitemap: http://acme.localhost/sitemap.xml" in site_robots
    # The test client (no WSGI server) answers the same.
    client = Client(HTTP_HOST="acme.localhost")
    assert client.get("/sitemap.xml").content.decode() == site
    # The app host lists no funnel.
    assert wsgi("/sitemap.xml", host="testserver").status_code == 404


def test_mid_funnel_steps_stay_out_of_the_sitemap(funnel, settings):
    """A thank-you page (like upsells) only makes sense after the steps before it."""
    _optin, thanks = _steps(funnel)
    assert thanks.kind == "thankyou"
    assert not Page.objects.filter(step=thanks, noindex=True).exists()
    serving.generation_bump()
    sitemap = wsgi("/sitemap.xml").text
    assert re.findall(r"<loc>([^<]+)</loc>", sitemap) == [
        f"http://acme.localhost/{funnel.slug}/"
    ]
    assert f"Disallow: /{funnel.slug}/{thanks.slug}/" in wsgi("/robots.txt").text


def test_noindex_first_step_is_disallowed_only_at_its_paths(funnel, settings):
    optin, thanks = _steps(funnel)
    Step.objects.filter(pk=thanks.pk).update(kind="sales")  # indexable by kind
    Page.objects.filter(step=optin).update(noindex=True)
    serving.generation_bump()
    lines = wsgi("/robots.txt").text.splitlines()
    assert f"Disallow: /{funnel.slug}/$" in lines
    assert f"Disallow: /{funnel.slug}/{optin.slug}/" in lines
    sitemap = wsgi("/sitemap.xml").text
    assert re.findall(r"<loc>([^<]+)</loc>", sitemap) == [
        f"http://acme.localhost/{funnel.slug}/{thanks.slug}/"
    ]


# Split tests -----------------------------------------------------------------

VARIANTS = [(1, 11, 70), (2, 12, 30)]


def test_variant_pick_is_sticky():
    ids = [uuid.uuid4() for _ in range(200)]
    first = [
        serving.variant_pick(visitor_id=v, step_id=5, variants=VARIANTS) for v in ids
    ]
    again = [
        serving.variant_pick(visitor_id=v, step_id=5, variants=VARIANTS) for v in ids
    ]
    assert first == again
    assert (
        serving.variant_pick(visitor_id=None, step_id=5, variants=VARIANTS)
        == VARIANTS[0]
    )


@pytest.mark.parametrize(
    "variants", [[(1, 11, 70), (2, 12, 30)], [(1, 11, 1), (2, 12, 1), (3, 13, 2)]]
)
def test_variant_pick_honours_weights(variants):
    n = 20_000
    counts = Counter(
        serving.variant_pick(visitor_id=uuid.uuid4(), step_id=9, variants=variants)[0]
        for _ in range(n)
    )
    total = sum(w for *_, w in variants)
    for page_id, _, weight in variants:
        share = counts[page_id] / n
        assert abs(share - weight / total) < 0.015, (page_id, share)


def test_removing_a_variant_moves_only_its_visitors():
    three = [(1, 11, 50), (2, 12, 25), (3, 13, 25)]
    two = [three[0], three[2]]
    ids = [uuid.uuid4() for _ in range(5000)]
    before = {
        v: serving.variant_pick(visitor_id=v, step_id=3, variants=three)[0] for v in ids
    }
    after = {
        v: serving.variant_pick(visitor_id=v, step_id=3, variants=two)[0] for v in ids
    }
    assert all(after[v] == before[v] for v in ids if before[v] != 2)
    assert {after[v] for v in ids if before[v] == 2} == {1, 3}


def test_served_variant_is_tracked_and_weight_zero_is_not_served(
    funnel, owner, workspace
):
    optin = _steps(funnel)[0]
    control = optin.pages.get()
    challenger = services.page_create_blank(
        step=optin, document=control.document, name="B"
    )
    services.page_update_settings(page=challenger, data={"title": "Variant B"})
    services.funnel_publish(funnel=funnel, user=owner)
    control.refresh_from_db()
    challenger.refresh_from_db()
    seen = Counter()
    for _ in range(40):
        reply = wsgi(f"/{funnel.slug}/")
        seen["B" if "<title>Variant B</title>" in reply.text else "A"] += 1
    assert seen["A"] > 5 and seen["B"] > 5
    views = _views(workspace_id=workspace.pk)
    served = {(e.variant_id, e.page_version_id) for e in views}
    assert served == {
        (control.pk, control.published_version_id),
        (challenger.pk, challenger.published_version_id),
    }
    Page.objects.filter(pk=challenger.pk).update(weight=0)
    serving.generation_bump()
    assert all(
        "<title>Variant B</title>" not in wsgi(f"/{funnel.slug}/").text
        for _ in range(15)
    )
