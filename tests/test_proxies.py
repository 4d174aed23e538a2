"""TRUSTED_PROXIES: who the client is, behind a proxy and without one."""

from __future__ import annotations

import pytest

from config import proxies

PROXY = "10.0.0.2"


def _meta(peer: str, xff: str | None = None, proto: str | None = None) -> dict:
    meta = {"REMOTE_ADDR": peer, "wsgi.url_scheme": "http"}
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    if proto is not None:
        meta["HTTP_X_FORWARDED_PROTO"] = proto
    return meta


@pytest.mark.parametrize(
    ("trusted", "peer", "xff", "expected"),
    [
        # No trusted proxies: the peer is the client, whatever it claims.
        ([], "203.0.113.5", "198.51.100.1", "203.0.113.5"),
        # A trusted peer: the right-most hop it added.
        ([PROXY], PROXY, "198.51.100.1", "198.51.100.1"),
        # Hops left of the first untrusted one were written by the client.
        ([PROXY], PROXY, "1.1.1.1, 198.51.100.1", "198.51.100.1"),
        # Chains of trusted proxies (CIDR) are skipped from the right.
        (["10.0.0.0/8"], PROXY, "198.51.100.1, 10.1.2.3", "198.51.100.1"),
        # A peer outside the list is not believed even if others are.
        ([PROXY], "203.0.113.5", "198.51.100.1", "203.0.113.5"),
        # A trusted peer without the header is the client itself.
        ([PROXY], PROXY, None, PROXY),
        # Garbage to the left stops the walk at the nearest known hop.
        ([PROXY], PROXY, "<script>, 198.51.100.1", "198.51.100.1"),
        (["10.0.0.0/8"], PROXY, "nonsense, 10.9.9.9", "10.9.9.9"),
        # Ports and brackets as some proxies write them.
        ([PROXY], PROXY, "198.51.100.1:4711", "198.51.100.1"),
        ([PROXY], PROXY, "[2001:db8::1]:4711", "2001:db8::1"),
        (["::1"], "::1", "2001:db8::7", "2001:db8::7"),
        # An IPv4-mapped IPv6 peer is its IPv4 address.
        ([PROXY], "::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),
    ],
)
def test_client_ip(settings, trusted, peer, xff, expected):
    """The client is the right-most untrusted hop, only behind a trusted peer."""
    settings.TRUSTED_PROXIES = trusted
    assert proxies.client_ip(_meta(peer, xff)) == expected


def test_client_ip_of_a_malformed_peer_is_none(settings):
    """A REMOTE_ADDR that is no address gives no client IP (not a crash)."""
    settings.TRUSTED_PROXIES = [PROXY]
    assert proxies.client_ip(_meta("not-an-ip", "198.51.100.1")) is None


@pytest.mark.parametrize(
    ("trusted", "proto", "expected"),
    [
        ([], "https", "http"),
        ([PROXY], "https", "https"),
        ([PROXY], "http, https", "https"),
        ([PROXY], "gopher", "http"),
    ],
)
def test_scheme(settings, trusted, proto, expected):
    """X-Forwarded-Proto counts only from a trusted peer."""
    settings.TRUSTED_PROXIES = trusted
    assert proxies.scheme(_meta(PROXY, proto=proto)) == expected


@pytest.mark.django_db
def test_https_redirect_trusts_only_the_proxy(client, settings):
    """With SECURE_SSL_REDIRECT, a client cannot skip it by claiming https; the
    trusted proxy can say the request came over https."""
    settings.SECURE_SSL_REDIRECT = True
    settings.TRUSTED_PROXIES = [PROXY]
    spoofed = client.get(
        "/login/", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_PROTO="https"
    )
    assert spoofed.status_code == 301
    assert spoofed["Location"] == "https://testserver/login/"
    proxied = client.get("/login/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
