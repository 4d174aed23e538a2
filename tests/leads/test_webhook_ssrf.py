"""Webhooks cannot reach the server's own networks (SSRF), when saved or sent."""

from __future__ import annotations

import ipaddress
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.urls import reverse
from django.utils import timezone

from leads import outbound, tasks
from leads.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db

BLOCKED_URLS = [
    "http://127.0.0.1:5432/",
    "http://[::1]/hook",
    "http://localhost:22/",
    "http://LOCALHOST:22/x",
    "http://admin.localhost/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:127.0.0.1]:6379/",
    "http://[::ffff:a9fe:a9fe]/",  # 169.254.169.254, IPv4-mapped
    "http://10.0.0.5/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # shared (carrier NAT)
    "http://100.100.100.200/",  # a cloud metadata service
    "http://0.0.0.0:8000/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",  # a cloud metadata service over IPv6
    "http://[ff02::1]/",
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
]


class Receiver:
    """A local HTTP endpoint that answers every POST with ``status`` (+ Location)."""

    def __init__(self, status: int = 200, location: str = "") -> None:
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(dict(self.headers))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.end_headers()
                self.wfile.write(b"ok")

            def do_GET(self) -> None:
                receiver.requests.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("127.0.0.1", True),
        ("169.254.169.254", True),
        ("::ffff:10.0.0.1", True),
        ("fc00::1", True),
        ("fec0::1", True),
        ("8.8.8.8", False),
        ("93.184.215.14", False),
        ("2606:4700:4700::1111", False),
        ("::ffff:8.8.8.8", False),
    ],
)
def test_address_blocked(address, blocked):
    assert outbound.address_blocked(ipaddress.ip_address(address)) is blocked


@pytest.mark.parametrize("url", BLOCKED_URLS)
def test_saving_a_webhook_to_an_internal_address_is_refused(owner_client, url):
    """The form says why, and nothing is stored."""
    response = owner_client.post(
        reverse("leads:webhooks"), {"url": url, "events": ["lead.created"]}
    )
    assert response.status_code == 422
    assert "private, local or reserved network" in response.content.decode()
    assert Webhook.objects.count() == 0


@pytest.mark.parametrize(
    "url", ["https://93.184.215.14/hook", "https://hooks.example.test/in"]
)
def test_public_or_not_yet_resolvable_urls_are_saved(owner_client, url):
    """A public address is fine; a name DNS cannot resolve yet is checked later."""
    response = owner_client.post(
        reverse("leads:webhooks"), {"url": url, "events": ["lead.created"]}
    )
    assert response.status_code == 302
    assert Webhook.objects.get().url == url


def test_allow_private_lets_self_hosters_save_internal_targets(owner_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    response = owner_client.post(
        reverse("leads:webhooks"),
        {"url": "http://127.0.0.1:8080/hook", "events": ["lead.created"]},
    )
    assert response.status_code == 302


def _delivery(workspace, url: str) -> WebhookDelivery:
    # Stored directly: as if saved while its name still resolved to a public address.
    hook = Webhook.objects.create(workspace=workspace, url=url, events=["lead.created"])
    return WebhookDelivery.objects.create(
        workspace=workspace,
        webhook=hook,
        event="lead.created",
        payload={"email": "a@b.c"},
        next_attempt_at=timezone.now(),
    )


def test_delivery_to_an_internal_address_is_refused_and_says_nothing(
    workspace, receiver
):
    """At delivery the address is checked again: an open port and a closed one get
    the same words, no status and no body, and no retry; nothing is connected to."""
    open_port = receiver()
    listening = _delivery(workspace, f"http://127.0.0.1:{open_port.port}/hook")
    closed = _delivery(workspace, "http://127.0.0.1:9/hook")
    # A name that resolves (here through the system resolver) to loopback.
    resolved = _delivery(workspace, f"http://127.1:{open_port.port}/hook")
    for delivery in (listening, closed, resolved):
        assert tasks.webhook_deliver_task.apply(args=[delivery.pk]).get() == "failed"
        delivery.refresh_from_db()
        assert (delivery.response_status, delivery.response_body) == (None, "")
        assert delivery.error == outbound.REFUSED_MESSAGE
        assert delivery.next_attempt_at is None
    assert open_port.requests == []


def test_delivery_connects_to_the_checked_address_and_keeps_the_host(
    workspace, receiver, settings
):
    """With WEBHOOK_ALLOW_PRIVATE the name is resolved once, the request goes to that
    address and still names the host."""
    settings.WEBHOOK_ALLOW_PRIVATE = True
    target = receiver()
    delivery = _delivery(workspace, f"http://localhost:{target.port}/hook?x=1")
    assert tasks.webhook_deliver_task.apply(args=[delivery.pk]).get() == "succeeded"
    assert target.requests[0]["Host"] == f"localhost:{target.port}"


def test_redirects_are_not_followed(workspace, receiver, settings):
    """A 3xx is the answer: the Location (here an internal service) gets nothing."""
    settings.WEBHOOK_ALLOW_PRIVATE = True
    inner = receiver()
    redirecting = receiver(status=302, location=f"http://127.0.0.1:{inner.port}/")
    delivery = _delivery(workspace, f"http://127.0.0.1:{redirecting.port}/hook")
    tasks.webhook_deliver_task.apply(args=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == "pending"  # retried later like any failure
    assert delivery.response_status == 302
    assert delivery.error.startswith("HTTP 302 (redirects are not followed")
    assert len(redirecting.requests) == 1
    assert inner.requests == []
