"""Redis (cache, event stream and Celery broker) down while a visitor opts in."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from analytics import ingest, shipper
from config.celery import app
from funnels.public_forms import form_token_issue
from leads.models import Lead, Webhook, WebhookDelivery
from pages.services import funnel_publish
from tests.factories import FunnelFactory, StepFactory
from tests.pages.factories import page_with_blocks

# Real commits: the opt-in event and the webhook are queued on commit.
pytestmark = pytest.mark.django_db(transaction=True)
CLOSED = "redis://127.0.0.1:1/0"


@pytest.fixture
def funnel(owner, workspace):
    funnel = FunnelFactory(workspace=workspace, name="Guide", slug="guide")
    page = page_with_blocks(
        "headline", "optin_form", funnel=funnel, name="Opt-in", slug="optin"
    )
    StepFactory(funnel=funnel, name="Thanks", slug="thanks", kind="thankyou")
    funnel_publish(funnel=page.step.funnel, user=owner)
    return funnel


@pytest.fixture
def redis_down(settings, monkeypatch):
    """Every Redis client this app has points at a closed port."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CLOSED,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    settings.ANALYTICS_REDIS_URL = CLOSED
    ingest.redis_reset()
    saved = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, CLOSED
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    yield
    app.conf.task_always_eager, app.conf.broker_url = saved
    settings.ANALYTICS_REDIS_URL = None
    ingest.redis_reset()


def _events(kind: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM analytics_event WHERE kind = %s", [kind])
        return cursor.fetchone()[0]


def test_visitor_opts_in_while_redis_is_down(visitor, funnel, workspace, redis_down):
    """The page serves, the lead and both events reach Postgres, nothing 500s or
    hangs; the webhook that could not be queued stays due for the sweeper
    (tests/leads/test_webhooks.py shows the sweeper sending it)."""
    hook = Webhook.objects.create(
        workspace=workspace, url="http://127.0.0.1:9/hook", events=["lead.created"]
    )
    page = visitor.get("/guide/?utm_source=newsletter")
    assert page.status_code == 200
    assert "__OF_FORM_TOKEN__" not in page.content.decode()
    step = funnel.steps.get(slug="optin")
    token = form_token_issue(step_id=step.pk, now=time.time() - 10)
    started = time.monotonic()
    response = visitor.post(
        "/guide/optin/optin/",
        {"email": "vera@example.com", "_of": token},
        HTTP_REFERER="http://acme.localhost/guide/?utm_source=newsletter",
    )
    assert time.monotonic() - started < 5  # no long hang on the dead broker
    assert response.status_code == 302
    assert response["Location"] == "/guide/thanks/"
    lead = Lead.objects.get()
    assert (lead.email, lead.first_source) == ("vera@example.com", "newsletter")
    # The opt-in is stored with its lead; the view is a log line the shipper
    # stores without Redis.
    assert _events("optin") == 1
    assert _events("view") == 0
    assert shipper.ship_once() == 1
    assert _events("view") == 1
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert delivery.next_attempt_at is not None  # due: the sweeper will queue it
