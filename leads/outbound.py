"""HTTP requests to URLs a workspace chose (webhooks), kept off internal networks.

Anyone can sign up and add a webhook, so a webhook URL must not become a way to
reach the machines around the server (databases, Redis, SSH, cloud metadata). A URL
is refused when saved and checked again at every delivery, because DNS can change
between the two: the host is resolved, every address it resolves to must be public,
and the request connects to that checked address (the name is kept for the Host
header and TLS). Redirects are never followed: a 3xx is recorded as the answer.
``WEBHOOK_ALLOW_PRIVATE=true`` lifts the address check for self-hosters whose
targets are internal.

Refused targets are never connected to, so the delivery log cannot tell an open port
from a closed one.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
REFUSED_MESSAGE = (
    "This address is on a private, local or reserved network, which webhooks "
    "cannot reach. Use a public URL."
)


class Refused(Exception):
    """The target is not allowed (private address, bad URL); message is safe."""


@dataclass(frozen=True)
class Response:
    status: int
    text: str


def address_blocked(address: IPAddress) -> bool:
    """Loopback, private, link-local (incl. metadata), multicast, reserved, shared
    (CGNAT), unspecified, documentation, and v6 forms that embed such a v4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d
            return address_blocked(address.ipv4_mapped)
        embedded = address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and address_blocked(embedded):
            return True
        if address.is_site_local:
            return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_link_local
        or address.is_loopback
        or address.is_private
        or address.is_unspecified
    )


def _allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE", False))


def _target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or Refused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("This URL is not valid.") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise Refused("Webhook URLs must start with https:// or http://.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise Refused("This URL has no host name.")
    return scheme, host, port or (443 if scheme == "https" else 80)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (OSError when it does not resolve)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[IPAddress] = []
    for info in infos:
        address = _literal(str(info[4][0]))
        if address is not None and address not in seen:
            seen.append(address)
    if not seen:
        raise OSError(f"{host} has no address")
    return seen


def _checked(host: str, addresses: list[IPAddress]) -> list[IPAddress]:
    if _allow_private():
        return addresses
    if host == "localhost" or host.endswith(".localhost"):
        raise Refused(REFUSED_MESSAGE)
    if any(address_blocked(a) for a in addresses):
        # One bad record is enough: an attacker controls which one we would pick.
        raise Refused(REFUSED_MESSAGE)
    return addresses


def url_check(url: str) -> None:
    """For saving a webhook: ValidationError if the URL targets a blocked network.

    A name that does not resolve now is accepted (DNS may be set up later); it is
    checked again at each delivery.
    """
    try:
        _scheme, host, port = _target(url)
        if host == "localhost" or host.endswith(".localhost"):
            _checked(host, [])
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            return
        _checked(host, addresses)
    except Refused as exc:
        raise ValidationError(str(exc)) from None


def _describe(exc: Exception) -> str:
    """A short, stable reason for the delivery log (no object reprs or paths)."""
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "TLS error: the endpoint's certificate could not be verified"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # before timeouts
        reason = str(exc).rsplit("]", 1)[-1].strip() or "failed"
        return f"Could not connect: {reason}"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError | TimeoutError):
        return "Timed out connecting"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return "Timed out waiting for the answer"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "The connection was closed before an answer"
    return f"{type(exc).__name__}: {exc}"


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """POST to the checked address of ``url``; Refused, or OSError with a reason."""
    scheme, host, port = _target(url)
    try:
        addresses = _checked(host, resolve(host, port))
    except (OSError, UnicodeError):
        raise OSError(f"Could not resolve {host}") from None
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = port == (443 if scheme == "https" else 80)
    host_header = host if default_port else f"{host}:{port}"
    if ":" in host and not default_port:
        host_header = f"[{host}]:{port}"
    elif ":" in host:
        host_header = f"[{host}]"
    last: Exception | None = None
    for address in addresses[:4]:
        pool: urllib3.HTTPConnectionPool
        if scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                str(address),
                port,
                server_hostname=None if _literal(host) else host,
                assert_hostname=host,
                cert_reqs="CERT_REQUIRED",
                retries=False,
                timeout=urllib3.Timeout(total=timeout),
            )
        else:
            pool = urllib3.HTTPConnectionPool(
                str(address),
                port,
                retries=False,
                timeout=urllib3.Timeout(total=timeout),
            )
        try:
            response = pool.urlopen(
                "POST",
                path,
                body=body,
                headers={**headers, "Host": host_header},
                redirect=False,
                retries=False,
                preload_content=False,
            )
            try:
                text = response.read(2000, decode_content=True)
            finally:
                response.release_conn()
            return Response(response.status, text.decode("utf-8", "replace"))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            last = exc
            if not isinstance(exc, urllib3.exceptions.NewConnectionError):
                break  # connected, then failed: do not send it twice
        finally:
            pool.close()
    assert last is not None
    raise OSError(_describe(last))
