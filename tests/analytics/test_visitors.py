from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone

from analytics import ingest, selectors, services
from analytics.models import Visitor

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
ANDROID_TABLET = "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

rf = RequestFactory()


def identify(workspace, request):
    return services.visitor_identify(
        request=request, workspace=workspace, funnel=5, step=6
    )


@pytest.mark.django_db
def test_new_visitor_first_touch_is_stored(workspace):
    """A first visit stores UTM parameters, referrer, landing step, device and IP."""
    request = rf.get(
        "/f/optin/?utm_source=newsletter&utm_medium=email&utm_campaign=spring"
        "&utm_content=hero&utm_term=funnels",
        HTTP_USER_AGENT=IPHONE,
        HTTP_REFERER="https://news.example/today",
        REMOTE_ADDR="203.0.113.9",
    )
    ref = identify(workspace, request)
    assert ref.is_new is True
    assert ref.cookie_value
    assert Visitor.objects.count() == 0  # queued, not yet written
    services.events_flush()

    visitor = Visitor.objects.get(workspace=workspace, public_id=ref.public_id)
    assert (
        visitor.utm_source,
        visitor.utm_medium,
        visitor.utm_campaign,
        visitor.utm_content,
        visitor.utm_term,
    ) == ("newsletter", "email", "spring", "hero", "funnels")
    assert visitor.referrer == "https://news.example/today"
    assert (visitor.landing_funnel_id, visitor.landing_step_id) == (5, 6)
    assert visitor.device_class == "mobile"
    assert visitor.ip == "203.0.113.9"


@pytest.mark.django_db
def test_returning_visitor_keeps_id_and_costs_nothing(workspace):
    """A valid cookie resolves to the same visitor without queueing anything."""
    first = identify(workspace, rf.get("/", HTTP_USER_AGENT=CHROME))
    client = ingest.redis_client()
    queued = client.xlen(ingest.STREAM_KEY)
    request = rf.get("/?utm_source=later", HTTP_USER_AGENT=CHROME)
    request.COOKIES[services.visitor_cookie_name(workspace)] = first.cookie_value
    again = identify(workspace, request)
    assert again.public_id == first.public_id
    assert again.is_new is False
    assert again.cookie_value is None
    assert client.xlen(ingest.STREAM_KEY) == queued


@pytest.mark.django_db
def test_stale_cookie_is_refreshed_and_first_touch_kept(workspace, monkeypatch):
    """After 30 minutes the cookie is re-issued, last_seen moves, first touch stays."""
    first = identify(workspace, rf.get("/?utm_source=ads", HTTP_USER_AGENT=CHROME))
    services.events_flush()
    later = timezone.now() + timedelta(hours=2)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    request = rf.get("/?utm_source=organic", HTTP_USER_AGENT=CHROME)
    request.COOKIES[services.visitor_cookie_name(workspace)] = first.cookie_value
    again = identify(workspace, request)
    assert again.public_id == first.public_id
    assert again.is_new is False
    assert again.cookie_value
    services.events_flush()
    visitor = Visitor.objects.get(public_id=first.public_id)
    assert visitor.utm_source == "ads"
    assert visitor.last_seen == later
    assert Visitor.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cookie",
    [
        "garbage",
        "1234:abc:def",
        "",
        "x" * 5000,
    ],
)
def test_forged_cookie_gets_a_new_visitor(workspace, cookie):
    """A forged or invalid cookie is ignored: a new visitor, never an error."""
    request = rf.get("/", HTTP_USER_AGENT=CHROME)
    request.COOKIES[services.visitor_cookie_name(workspace)] = cookie
    ref = identify(workspace, request)
    assert ref.is_new is True
    assert ref.cookie_value


@pytest.mark.django_db
def test_tampered_cookie_id_gets_a_new_visitor(workspace):
    """Swapping the id inside a valid cookie breaks the signature: new visitor."""
    real = services.visitor_cookie_value(uuid.uuid4())
    victim = uuid.uuid4()
    forged = victim.hex + real[32:]
    request = rf.get("/", HTTP_USER_AGENT=CHROME)
    request.COOKIES[services.visitor_cookie_name(workspace)] = forged
    ref = identify(workspace, request)
    assert ref.is_new is True
    assert ref.public_id != victim


@pytest.mark.django_db
def test_cookie_of_another_workspace_is_not_used(workspace, other_workspace):
    """Each workspace has its own cookie name, hence its own visitors."""
    assert services.visitor_cookie_name(workspace) != services.visitor_cookie_name(
        other_workspace
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "ua", "headers"),
    [
        ("GET", GOOGLEBOT, {}),
        ("GET", "curl/8.5.0", {}),
        ("GET", "facebookexternalhit/1.1", {}),
        ("HEAD", CHROME, {}),
        ("GET", CHROME, {"HTTP_SEC_PURPOSE": "prefetch;prerender"}),
        ("GET", CHROME, {"HTTP_PURPOSE": "prefetch"}),
        ("GET", CHROME, {"HTTP_X_MOZ": "prefetch"}),
    ],
)
def test_bots_and_prefetch_are_not_counted(workspace, method, ua, headers):
    """Known bots, HEAD requests and prefetch/prerender get no visitor at all."""
    request = rf.generic(method, "/", HTTP_USER_AGENT=ua, **headers)
    assert identify(workspace, request) is None
    assert ingest.redis_client().xlen(ingest.STREAM_KEY) == 0


def test_is_bot_and_device_class():
    """Browsers are people; device classes follow the User-Agent."""
    assert services.is_bot(CHROME) is False
    assert services.is_bot(IPHONE) is False
    assert services.is_bot("") is False
    assert services.is_bot(GOOGLEBOT) is True
    assert services.device_class(CHROME) == "desktop"
    assert services.device_class(IPHONE) == "mobile"
    assert services.device_class(IPAD) == "tablet"
    assert services.device_class(ANDROID_TABLET) == "tablet"
    assert services.device_class(GOOGLEBOT) == "bot"


@pytest.mark.django_db
def test_drop_ip_addresses_is_honoured(workspace):
    """A workspace that drops IP addresses stores none."""
    workspace.drop_ip_addresses = True
    workspace.save()
    ref = identify(
        workspace, rf.get("/", HTTP_USER_AGENT=CHROME, REMOTE_ADDR="198.51.100.7")
    )
    services.events_flush()
    assert Visitor.objects.get(public_id=ref.public_id).ip is None


@pytest.mark.django_db
def test_visitor_written_directly_when_redis_is_down(workspace, redis_down):
    """With Redis down the visitor row is written straight to Postgres."""
    ref = identify(
        workspace,
        rf.get("/?utm_source=x", HTTP_USER_AGENT=CHROME, REMOTE_ADDR="not-an-ip"),
    )
    visitor = Visitor.objects.get(workspace=workspace, public_id=ref.public_id)
    assert visitor.utm_source == "x"
    assert visitor.ip is None


@pytest.mark.django_db
def test_link_lead_before_flush_keeps_first_touch(workspace):
    """Linking a lead before the first sighting is flushed still keeps first touch."""
    ref = identify(workspace, rf.get("/?utm_source=ads", HTTP_USER_AGENT=IPHONE))
    visitor = services.visitor_link_lead(
        workspace=workspace, public_id=ref.public_id, lead_id=42
    )
    assert visitor.lead_id == 42
    services.events_flush()
    visitor.refresh_from_db()
    assert (visitor.lead_id, visitor.utm_source, visitor.device_class) == (
        42,
        "ads",
        "mobile",
    )
    assert selectors.visitors_for_lead(workspace=workspace, lead_id=42) == [visitor]


@pytest.mark.django_db
def test_visitor_cookie_attributes(workspace, settings):
    """The cookie lasts a year, is HttpOnly, SameSite=Lax, Secure per settings."""
    settings.SESSION_COOKIE_SECURE = True
    ref = identify(workspace, rf.get("/", HTTP_USER_AGENT=CHROME))
    response = services.visitor_cookie_set(
        HttpResponse(), workspace=workspace, visitor=ref
    )
    morsel = response.cookies[services.visitor_cookie_name(workspace)]
    assert morsel.value == ref.cookie_value
    assert morsel["max-age"] == 31536000
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["secure"] is True
    assert services.visitor_cookie_read(ref.cookie_value)[0] == ref.public_id


@pytest.mark.django_db
def test_step_view_record_stores_visitor_and_view_in_one_entry(workspace):
    """A page view queues the new visitor and its view event as one stream entry."""
    request = rf.get("/?utm_source=ads", HTTP_USER_AGENT=CHROME)
    ref = services.step_view_record(
        request=request, workspace=workspace, funnel=5, step=6, variant_id=3
    )
    assert ref.is_new is True
    assert ingest.redis_client().xlen(ingest.STREAM_KEY) == 1
    assert services.events_flush() == 1
    visitor = Visitor.objects.get(workspace=workspace, public_id=ref.public_id)
    assert visitor.utm_source == "ads"
    journey = selectors.visitor_journey(workspace=workspace, public_ids=ref.public_id)
    assert [(e.kind, e.funnel_id, e.step_id, e.variant_id) for e in journey] == [
        ("view", 5, 6, 3)
    ]


@pytest.mark.django_db
def test_step_view_record_ignores_bots(workspace):
    """A crawler's page view is neither a visitor nor a view."""
    request = rf.get("/", HTTP_USER_AGENT=GOOGLEBOT)
    assert (
        services.step_view_record(
            request=request, workspace=workspace, funnel=5, step=6
        )
        is None
    )
    assert ingest.redis_client().xlen(ingest.STREAM_KEY) == 0


@pytest.mark.django_db
def test_step_view_record_with_redis_down(workspace, redis_down):
    """With Redis down, the visitor and the view land in Postgres at once."""
    request = rf.get("/", HTTP_USER_AGENT=CHROME)
    ref = services.step_view_record(
        request=request, workspace=workspace, funnel=5, step=6
    )
    assert Visitor.objects.filter(public_id=ref.public_id).count() == 1
    counts = selectors.funnel_step_counts(workspace=workspace, funnel_id=5)
    assert counts[6].views == 1
    assert counts[6].unique_visitors == 1


@pytest.mark.django_db
def test_cookie_older_than_a_year_gets_a_new_visitor(workspace, monkeypatch):
    """An expired (over a year old) cookie is not honoured."""
    first = identify(workspace, rf.get("/", HTTP_USER_AGENT=CHROME))
    later = timezone.now() + timedelta(days=366)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    request = rf.get("/", HTTP_USER_AGENT=CHROME)
    request.COOKIES[services.visitor_cookie_name(workspace)] = first.cookie_value
    again = identify(workspace, request)
    assert again.is_new is True
    assert again.public_id != first.public_id
