from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone

from leads import tasks
from leads.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings):
    """These tests deliver to a receiver on 127.0.0.1, which the SSRF guard refuses
    unless the installation allows private targets (see test_webhook_ssrf.py)."""
    settings.WEBHOOK_ALLOW_PRIVATE = True


class Receiver:
    """A local HTTP endpoint answering with the given status codes in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.headers, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"try later")

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(statuses):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _delivery(workspace, url: str) -> WebhookDelivery:
    hook = Webhook.objects.create(
        workspace=workspace, url=url, events=["lead.created"], secret="whsec_test"
    )
    return WebhookDelivery.objects.create(
        workspace=workspace,
        webhook=hook,
        event="lead.created",
        payload={"email": "a@b.c"},
        next_attempt_at=timezone.now(),
    )


def test_delivery_is_signed_and_logged(workspace, receiver):
    """A delivery POSTs signed JSON and logs the response."""
    r = receiver([200])
    delivery = _delivery(workspace, r.url)
    assert tasks.webhook_deliver_task.apply(args=[delivery.pk]).get() == "succeeded"
    headers, body = r.requests[0]
    assert json.loads(body)["data"] == {"email": "a@b.c"}
    assert headers["X-OpenFunnels-Event"] == "lead.created"
    sig = dict(p.split("=", 1) for p in headers["X-OpenFunnels-Signature"].split(","))
    expected = hmac.new(
        b"whsec_test", f"{sig['t']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert sig["v1"] == expected
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (
        "succeeded",
        1,
        200,
    )


def _run_until_settled(delivery) -> list[float]:
    """Run the deliverer like the worker would, letting each backoff elapse.

    Returns the waits it scheduled, in seconds.
    """
    waits = []
    for _ in range(20):
        tasks.webhook_deliver_task.apply(args=[delivery.pk])
        delivery.refresh_from_db()
        if delivery.status != "pending":
            break
        waits.append((delivery.next_attempt_at - timezone.now()).total_seconds())
        # A retry that is not due yet is skipped (a sweeper's duplicate, say).
        assert tasks.webhook_deliver_task.apply(args=[delivery.pk]).get() == "not due"
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=timezone.now()
        )
    return waits


def test_failures_are_retried_with_backoff_then_given_up(workspace, receiver):
    """Failures retry on the schedule (>= 6 tries over ~a day), then fail for good."""
    r = receiver([500] * 10)
    delivery = _delivery(workspace, r.url)
    assert sum(tasks.RETRY_SCHEDULE) >= 20 * 3600
    assert len(tasks.RETRY_SCHEDULE) >= 6
    waits = _run_until_settled(delivery)
    assert len(waits) == len(tasks.RETRY_SCHEDULE)
    for wait, planned in zip(waits, tasks.RETRY_SCHEDULE, strict=True):
        assert planned * 0.85 <= wait <= planned * 1.15  # backoff with jitter
    assert delivery.attempts == len(tasks.RETRY_SCHEDULE) + 1
    assert delivery.status == "failed"
    assert delivery.response_status == 500
    assert len(r.requests) == len(tasks.RETRY_SCHEDULE) + 1


def test_retry_succeeds_after_a_failure(workspace, receiver):
    """A 503 then 200 ends delivered after two tries."""
    r = receiver([503, 200])
    delivery = _delivery(workspace, r.url)
    _run_until_settled(delivery)
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


def test_sweeper_requeues_deliveries_the_broker_never_got(workspace, receiver):
    """A due delivery nobody picked up (broker down at the time) is sent later."""
    r = receiver([200])
    delivery = _delivery(workspace, r.url)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timezone.timedelta(minutes=10)
    )
    fresh = _delivery(workspace, r.url)  # just queued: left to its own task
    assert tasks.webhooks_sweep_task.apply().get() == 1
    delivery.refresh_from_db()
    fresh.refresh_from_db()
    assert (delivery.status, len(r.requests)) == ("succeeded", 1)
    assert fresh.status == "pending"


def test_unreachable_endpoint_records_error(workspace):
    """A closed port is logged as an error and a retry is scheduled."""
    delivery = _delivery(workspace, "http://127.0.0.1:9/nothing")
    tasks.webhook_deliver_task.apply(args=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert delivery.error == "Could not connect: Connection refused"
    assert delivery.next_attempt_at is not None


def test_follow_up_merge_fields(
    optin_step, mailoutbox, django_capture_on_commit_callbacks
):
    """An opt-in step's follow-up e-mail goes out with merge fields filled."""
    from leads import services

    services.follow_up_save(
        step=optin_step,
        is_enabled=True,
        subject="Hi {{ first_name }}",
        body="Your guide, {{first_name}}: {{ unknown }}done",
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.lead_capture(
            step=optin_step, data={"email": "f@x.io", "first_name": "Fay"}
        )
    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject == "Hi Fay"
    assert mailoutbox[0].body == "Your guide, Fay: done"
    assert mailoutbox[0].to == ["f@x.io"]
