"""Who the client is: the one place that reads a request's IP address and scheme.

Forwarded headers are believed only from peers listed in ``TRUSTED_PROXIES``
(comma-separated IPs or CIDR ranges, empty by default). For a trusted peer the client
is the right-most ``X-Forwarded-For`` hop that is not itself a trusted proxy (hops to
its left were written by the client and prove nothing), and the scheme is the one in
``X-Forwarded-Proto``. For any other peer the peer is the client and forwarded
headers are ignored, so nobody can claim to be somebody else by sending them.

``ProxyMiddleware`` (first in MIDDLEWARE) rewrites ``REMOTE_ADDR`` and the scheme for
Django, so ``request.META["REMOTE_ADDR"]``, ``request.is_secure()`` and
``build_absolute_uri()`` all tell the truth; the lean serving path (which runs
before any middleware) calls ``client_ip`` and ``scheme`` itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, MutableMapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:  # settings.py imports this module: keep its imports light
    from django.http import HttpRequest, HttpResponse

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PEER_KEY = "openfunnels.peer_addr"  # the socket peer, kept when REMOTE_ADDR changes
_CLIENT_KEY = "openfunnels.client_ip"
_SCHEME_KEY = "openfunnels.scheme"


def parse_networks(values: list[str] | tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """``TRUSTED_PROXIES`` entries as networks; ValueError names a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address or CIDR range (like 10.0.0.0/8)"
            ) from None
    return tuple(networks)


@lru_cache(maxsize=16)
def _networks(values: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return parse_networks(values)


def _address(value: str) -> IPAddress | None:
    """An address from a header hop: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``."""
    value = value.strip().strip('"')
    if value.startswith("["):  # [v6]:port
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _trusted(address: IPAddress | None) -> bool:
    if address is None:
        return False
    networks = _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))
    return any(address in network for network in networks)


def _peer(meta: Mapping[str, Any]) -> str:
    return str(meta.get(PEER_KEY) or meta.get("REMOTE_ADDR") or "")


def _remember(meta: Mapping[str, Any], key: str, value: str) -> None:
    if isinstance(meta, MutableMapping):
        meta[key] = value


def client_ip(meta: Mapping[str, Any]) -> str | None:
    """The client's IP address for a WSGI environ / ``request.META``, or None."""
    known = meta.get(_CLIENT_KEY)
    if known is not None:
        return known or None
    peer = _peer(meta)
    peer_address = _address(peer)
    if not _trusted(peer_address):
        result = str(peer_address) if peer_address else ""
    else:
        result = str(peer_address)
        hops = str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break  # garbage from the client: the nearest proxy is what we know
            result = str(address)
            if not _trusted(address):
                break
    _remember(meta, _CLIENT_KEY, result)
    return result or None


def scheme(meta: Mapping[str, Any]) -> str:
    """``https`` or ``http``: the proxy's word for a trusted peer, else the socket's."""
    known = meta.get(_SCHEME_KEY)
    if known:
        return known
    result = "https" if meta.get("wsgi.url_scheme") == "https" else "http"
    forwarded = str(meta.get("HTTP_X_FORWARDED_PROTO") or "")
    if forwarded and _trusted(_address(_peer(meta))):
        # Each proxy may append its own: the last one is the nearest trusted proxy.
        value = forwarded.split(",")[-1].strip().lower()
        if value in {"http", "https"}:
            result = value
    _remember(meta, _SCHEME_KEY, result)
    return result


def is_secure(meta: Mapping[str, Any]) -> bool:
    return scheme(meta) == "https"


class ProxyMiddleware:
    """Make ``REMOTE_ADDR`` the client and the request's scheme the client's scheme.

    Goes first in MIDDLEWARE, before SecurityMiddleware decides on HTTPS redirects.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if PEER_KEY not in meta:
            peer = _peer(meta)
            ip = client_ip(meta)
            meta[PEER_KEY] = peer
            if ip:
                meta["REMOTE_ADDR"] = ip
            meta["wsgi.url_scheme"] = scheme(meta)
        return self.get_response(request)
