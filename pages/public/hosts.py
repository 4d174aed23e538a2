"""Which kind of host a request came to: the app, a workspace's public host, or none.

The app (admin, builder, dashboards, API) answers only on its own hosts
(``settings.APP_HOSTS``, the ``ALLOWED_HOSTS`` variable). Published funnels answer
only on public hosts: ``<workspace-slug>.<PUBLIC_DOMAIN>`` and custom domains
(``pages.Domain``), each of which belongs to exactly one workspace. So a
workspace's head code never runs on the admin's origin, and two workspaces never
share an origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host

from .. import serving

APP = "app"


@dataclass(frozen=True)
class PublicHost:
    """The public host a request came to."""

    kind: str  # "subdomain" or "domain"
    host: str  # as the browser sent it, port included
    workspace_id: int
    workspace_slug: str
    funnel_slug: str | None = None  # a custom domain serves one funnel

    @property
    def is_domain(self) -> bool:
        return self.kind == "domain"

    @property
    def prefix(self) -> str:
        """The path prefix the one route table has but this host's URLs do not."""
        return f"/{self.funnel_slug}" if self.is_domain else ""


@dataclass(frozen=True)
class Moved:
    """An old workspace slug: the same path on the current host."""

    host: str


def host_name(request: HttpRequest) -> tuple[str, str]:
    """(host name lower-cased, without port or final dot; Host header as sent)."""
    raw = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
    domain, _ = split_domain_port(raw)
    return domain.rstrip("."), raw


@lru_cache(maxsize=8)
def _public_domain(value: str) -> str:
    domain, _ = split_domain_port(value)
    return domain or value.split(":", 1)[0]


def public_domain_name() -> str:
    """PUBLIC_DOMAIN without its port."""
    return _public_domain(settings.PUBLIC_DOMAIN)


@lru_cache(maxsize=8)
def _exact(hosts: tuple[str, ...]) -> frozenset[str]:
    return frozenset(h.lower() for h in hosts if not h.startswith(".") and h != "*")


def is_app_host(name: str) -> bool:
    return name in _exact(tuple(settings.APP_HOSTS)) or (
        bool(name) and validate_host(name, settings.APP_HOSTS)
    )


def classify(request: HttpRequest) -> str | PublicHost | Moved | None:
    """APP, a PublicHost, Moved (an old workspace slug) or None (unknown host)."""
    name, raw = host_name(request)
    if not name:
        return None
    if name in _exact(tuple(settings.APP_HOSTS)):
        return APP
    public = public_domain_name()
    try:
        found = serving.public_host(name, public)
    except serving.Unavailable:
        found = None
    if found is not None:
        if found.get("redirect"):
            _, port = split_domain_port(raw)
            target = f"{found['redirect']}.{public}"
            return Moved(f"{target}:{port}" if port else target)
        return PublicHost(
            kind=found["kind"],
            host=raw,
            workspace_id=found["workspace_id"],
            workspace_slug=found["slug"],
            funnel_slug=found.get("funnel_slug"),
        )
    if name.endswith("." + public):
        return None  # no such workspace
    return APP if validate_host(name, settings.APP_HOSTS) else None


def workspace_origin(slug: str) -> str:
    """http(s)://<slug>.<PUBLIC_DOMAIN>: where a workspace's funnels are served."""
    return f"{settings.PUBLIC_SCHEME}://{slug}.{settings.PUBLIC_DOMAIN}"
