"""The lean public serving path: published pages, robots.txt, sitemap.xml, hosts.

``PublicDispatcher`` wraps the Django WSGI application (config/wsgi.py). It answers
GET/HEAD of published pages, ``robots.txt``, ``sitemap.xml`` and the TLS proxy's
``/domains/check`` itself — no URL resolver, no middleware, no session — and hands
everything else to Django. It also routes by Host: the app's own hosts
(``ALLOWED_HOSTS``) get the whole app; a custom domain (``pages.Domain``) gets its
funnel at ``/`` and ``/<step>/`` plus the public form endpoints and static files,
nothing else; any other host gets a 404.

Per page view the work is: in-process lookups of the live step and its HTML, the
visitor cookie check (cached HMAC), the split-test pick, a fresh form token, and ONE
pipelined Redis round trip that appends the view (with the visitor's first sighting)
to the analytics stream and reads the serving generation.

Staleness: every publish, unpublish, rollback or domain change bumps the generation
key in Redis (now and again after the commit). A process drops its in-process
caches as soon as a round trip shows a new generation, so a change reaches each
worker at its next request (that one request may still get the previous state). If
Redis is unreachable, cached entries live at most ``LOCAL_TTL`` seconds.

The Django view (pages.public.serve) calls ``page_response`` too, so both paths
send the same bytes, headers and cookie and record the same event.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import HttpResponse, QueryDict
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils.http import http_date

from analytics import ingest
from analytics import services as analytics
from config import proxies
from funnels.public_forms import FORM_TOKEN_PLACEHOLDER, form_token_issue

from . import selectors

logger = logging.getLogger(__name__)

GEN_KEY = "of:serve:gen"
LOCAL_TTL = 5.0  # seconds an in-process entry lives when Redis cannot tell
HTML_TTL = 60 * 60 * 24  # Redis copy of a version's HTML (immutable)
_MAX_ENTRIES = 10_000
_SLUG = r"[-a-zA-Z0-9_]+"
_PAGE_RE = re.compile(rf"^/({_SLUG})/(?:({_SLUG})/)?$")
_STEP_RE = re.compile(rf"^/(?:({_SLUG})/)?$")
# Public endpoints of a published step (leads/urls.py) and the page itself.
_ENDPOINT_RE = re.compile(
    rf"^/({_SLUG})/(?:({_SLUG})/(?:(?:optin|order|accept|decline|receipt)/)?)?$"
)
_PREFETCH = ("Purpose", "Sec-Purpose", "X-Purpose", "X-Moz")
_PREFETCH_META = tuple("HTTP_" + h.upper().replace("-", "_") for h in _PREFETCH)
_NOT_FOUND = (
    b'<!doctype html><html lang="en"><meta charset="utf-8">'
    b'<meta name="viewport" content="width=device-width, initial-scale=1">'
    b'<title>Page not found</title><body style="font:16px/1.5 system-ui,sans-serif;'
    b'max-width:32rem;margin:15vh auto;padding:0 1rem;color:#1f2937">'
    b"<h1>Page not found</h1><p>There is no published page at this address.</p>"
    b"</body></html>"
)


# ------------------------------------------------------------------ caches
class _Local:
    """In-process caches, valid for one serving generation (thread-safe enough:
    single dict operations, and a race only costs a reload)."""

    def __init__(self) -> None:
        self.gen: bytes | None = None
        self.entries: dict[tuple, tuple[Any, bytes | None, float]] = {}
        self.html: dict[tuple, tuple[str, ...]] = {}
        self.lock = threading.Lock()

    def note_gen(self, gen: bytes | None) -> None:
        if gen != self.gen:
            with self.lock:
                self.gen = gen
                self.entries = {}

    def clear(self) -> None:
        with self.lock:
            self.gen = None
            self.entries = {}
            self.html = {}


_local = _Local()


def _redis_gen() -> bytes | None:
    ok, gen = ingest.stream_append_entry_get(None, GEN_KEY)
    if ok:
        _local.note_gen(gen)
    return _local.gen


def _cached(key: tuple, load: Callable[[], Any]) -> Any:
    """``load()`` once per generation (and at most LOCAL_TTL seconds)."""
    hit = _local.entries.get(key)
    now = time.monotonic()
    if hit is not None and hit[1] == _local.gen and hit[2] > now:
        return hit[0]
    gen = _redis_gen()  # the generation before loading: a later bump invalidates
    value = load()
    entries = _local.entries
    if len(entries) >= _MAX_ENTRIES:
        entries.clear()
    entries[key] = (value, gen, now + LOCAL_TTL)
    return value


def generation_bump() -> None:
    """Tell every process that published state changed (publish, domains, ...)."""
    _local.clear()
    try:
        ingest.redis_client().incr(GEN_KEY)
    except Exception:  # Redis down: processes fall back to LOCAL_TTL
        logger.warning("serving: could not bump the generation")


def local_caches_clear() -> None:
    _local.clear()


def live_ref(funnel_slug: str, step_slug: str | None) -> dict | None:
    return _cached(
        ("ref", funnel_slug, step_slug or ""),
        lambda: selectors.live_page_ref(funnel_slug=funnel_slug, step_slug=step_slug),
    )


def domain_funnel(host: str) -> str | None:
    return _cached(("domain", host), lambda: selectors.domain_funnel_slug(host=host))


def _version_html(version_id: int) -> str:
    key = f"of:serve:html:{version_id}"
    client = ingest.redis_client()
    try:
        cached = client.get(key)
        if cached is not None:
            return cached.decode()
    except Exception:
        cached = None
    html = selectors.version_html(version_id=version_id)
    try:
        client.set(key, html.encode(), ex=HTML_TTL)
    except Exception:
        logger.warning("serving: cache unavailable")
    return html


def html_parts(version_id: int, strip_prefix: str | None = None) -> tuple[str, ...]:
    """A version's HTML split at the form-token placeholder (immutable per version).

    ``strip_prefix`` ("/<funnel-slug>") makes the page's own links host-relative
    for a custom domain: ``"/guide/thanks/"`` becomes ``"/thanks/"``.
    """
    key = (version_id, strip_prefix)
    parts = _local.html.get(key)
    if parts is None:
        html = _version_html(version_id)
        if strip_prefix:
            html = html.replace(f'"{strip_prefix}/', '"/')
        parts = tuple(html.split(FORM_TOKEN_PLACEHOLDER))
        if len(_local.html) >= 256:
            _local.html.clear()
        _local.html[key] = parts
    return parts


# ------------------------------------------------------------------ split tests
def _unit(visitor: bytes, step_id: int, page_id: int) -> float:
    digest = hashlib.blake2b(
        b"%s:%d:%d" % (visitor, step_id, page_id), digest_size=8
    ).digest()
    # In (0, 1]: never 0, so the log below is finite.
    return (int.from_bytes(digest, "big") + 1) / 2.0**64


def variant_pick(
    *, visitor_id: Any, step_id: int, variants: Sequence[tuple[int, int, int]]
) -> tuple[int, int, int]:
    """The (page id, version id, weight) a visitor sees on a step.

    Weighted rendezvous hashing: each variant scores ``-ln(u) / weight`` with ``u``
    a hash of (visitor, step, variant) in (0, 1]; the lowest score wins. Sticky per
    visitor and step, each variant wins with probability weight / sum of weights
    (they need not add up to 100), and removing a variant moves only its own
    visitors. Without a visitor (bots, HEAD) the first variant is served.
    """
    if len(variants) == 1 or visitor_id is None:
        return variants[0]
    visitor = str(visitor_id).encode()
    return min(
        variants,
        key=lambda v: -math.log(_unit(visitor, step_id, v[0])) / v[2],
    )


# ------------------------------------------------------------------ responses
def _is_secure(meta: Mapping[str, Any]) -> bool:
    return proxies.is_secure(meta)


def _security_headers(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What Django's middleware would add to a public page (DEBUG off)."""
    headers = [("X-Content-Type-Options", "nosniff")]
    if settings.SECURE_REFERRER_POLICY:
        headers.append(("Referrer-Policy", settings.SECURE_REFERRER_POLICY))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(
            ("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY)
        )
    headers.append(("X-Frame-Options", getattr(settings, "X_FRAME_OPTIONS", "DENY")))
    if settings.SECURE_HSTS_SECONDS and _is_secure(meta):
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        headers.append(("Strict-Transport-Security", value))
    return headers


@dataclass(frozen=True)
class PageView:
    """A served page: bytes and headers, plus who saw it (for the cookie)."""

    body: bytes
    headers: list[tuple[str, str]]
    workspace: Any
    visitor: analytics.VisitorRef | None


def page_view(
    *, ref: dict, meta: Mapping[str, Any], strip_prefix: str | None = None
) -> PageView:
    """Serve a live step: pick the variant, track the view, stamp the forms."""
    # What the analytics calls read of a workspace (a model instance costs ~10 us).
    workspace: Any = SimpleNamespace(
        pk=ref["workspace_id"],
        public_id=ref["workspace_public_id"],
        drop_ip_addresses=ref["drop_ip"],
    )
    cookie_name = f"{analytics.COOKIE_PREFIX}{ref['workspace_public_id']}"
    raw_cookies = meta.get("HTTP_COOKIE", "")
    cookie = parse_cookie(raw_cookies).get(cookie_name) if raw_cookies else None
    query = meta.get("QUERY_STRING", "")
    visitor, visitor_line = analytics.step_view_visitor(
        workspace=workspace,
        funnel_id=ref["funnel_id"],
        step_id=ref["step_id"],
        cookie_value=cookie,
        user_agent=meta.get("HTTP_USER_AGENT", ""),
        method=meta.get("REQUEST_METHOD", "GET"),
        headers={
            name: meta[key]
            for name, key in zip(_PREFETCH, _PREFETCH_META, strict=True)
            if key in meta
        },
        query=QueryDict(query) if query else {},
        referrer=meta.get("HTTP_REFERER", ""),
        ip=proxies.client_ip(meta),
    )
    page_id, version_id, _ = variant_pick(
        visitor_id=visitor.public_id if visitor else None,
        step_id=ref["step_id"],
        variants=ref["variants"],
    )
    fields = None
    if visitor is not None:
        fields = analytics.step_view_fields(
            workspace=workspace,
            funnel_id=ref["funnel_id"],
            step_id=ref["step_id"],
            visitor=visitor,
            visitor_line=visitor_line,
            page_version_id=version_id,
            variant_id=page_id,
        )
    parts = html_parts(version_id, strip_prefix)
    if len(parts) > 1:
        body = form_token_issue(step_id=ref["step_id"], variant_id=page_id).join(parts)
    else:
        body = parts[0]
    ok, gen = ingest.stream_append_entry_get(fields, GEN_KEY)
    if ok:
        _local.note_gen(gen)
    elif fields is not None:
        analytics.step_view_store_direct(fields)
    data = body.encode()
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        # Every view is counted, so no shared cache may answer for us.
        ("Cache-Control", "private, no-cache"),
        ("Content-Length", str(len(data))),
        *_security_headers(meta),
    ]
    return PageView(data, headers, workspace, visitor)


def page_response(
    *, ref: dict, meta: Mapping[str, Any], strip_prefix: str | None = None
) -> HttpResponse:
    """``page_view`` as a Django response (the view in pages.public)."""
    view = page_view(ref=ref, meta=meta, strip_prefix=strip_prefix)
    response = HttpResponse(view.body)
    for name, value in view.headers:
        response[name] = value
    return analytics.visitor_cookie_set(
        response, workspace=view.workspace, visitor=view.visitor
    )


def _set_cookie_header(view: PageView) -> str | None:
    """The Set-Cookie value Django's ``set_cookie`` would send for the visitor."""
    if view.visitor is None or not view.visitor.cookie_value:
        return None
    c = analytics.visitor_cookie(
        workspace=view.workspace, value=view.visitor.cookie_value
    )
    parts = [
        f"{c['key']}={c['value']}",
        f"expires={http_date(time.time() + c['max_age'])}",
        *(["HttpOnly"] if c["httponly"] else []),
        f"Max-Age={c['max_age']}",
        f"Path={c['path']}",
        f"SameSite={c['samesite']}",
        *(["Secure"] if c["secure"] else []),
    ]
    return "; ".join(parts)


def _wsgi_page(view: PageView, start_response: Callable, method: str) -> list:
    headers = view.headers
    cookie = _set_cookie_header(view)
    if cookie is not None:
        headers = [*headers, ("Set-Cookie", cookie)]
    start_response("200 OK", headers)
    return [] if method == "HEAD" else [view.body]


def not_found() -> HttpResponse:
    response = HttpResponse(_NOT_FOUND, status=404)
    response["Cache-Control"] = "no-cache"
    return response


def _text(body: str, content_type: str, meta: Mapping[str, Any]) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Length"] = str(len(response.content))
    response["Cache-Control"] = "public, max-age=300"
    for name, value in _security_headers(meta):
        response[name] = value
    return response


def _step_path(entry: dict, custom: bool) -> str:
    if custom:
        return "/" if entry["first"] else f"/{entry['step']}/"
    if entry["first"]:
        return f"/{entry['funnel']}/"
    return f"/{entry['funnel']}/{entry['step']}/"


def _base_url(meta: Mapping[str, Any], host: str) -> str:
    return f"{'https' if _is_secure(meta) else 'http'}://{host}"


def robots_txt(*, meta: Mapping[str, Any], host: str, funnel_slug: str | None) -> str:
    """Allow the published steps; disallow those whose page asks for noindex."""
    steps = _cached(
        ("sitemap", funnel_slug or ""),
        lambda: selectors.sitemap_steps(funnel_slug=funnel_slug),
    )
    custom = funnel_slug is not None
    lines = ["User-agent: *"]
    for entry in steps:
        if entry["noindex"]:
            path = _step_path(entry, custom)
            # A first step answers at its own path too; "$" ends a path pattern.
            lines.append(
                f"Disallow: {path}$" if entry["first"] else f"Disallow: {path}"
            )
            if entry["first"]:
                prefix = "" if custom else f"/{entry['funnel']}"
                lines.append(f"Disallow: {prefix}/{entry['step']}/")
    if not custom:
        lines += [f"Disallow: /{p}/" for p in ("admin", "login", "signup")]
    if len(lines) == 1:
        lines.append("Disallow:")
    lines += ["", f"Sitemap: {_base_url(meta, host)}/sitemap.xml", ""]
    return "\n".join(lines)


def sitemap_xml(*, meta: Mapping[str, Any], host: str, funnel_slug: str | None) -> str:
    steps = _cached(
        ("sitemap", funnel_slug or ""),
        lambda: selectors.sitemap_steps(funnel_slug=funnel_slug),
    )
    base = _base_url(meta, host)
    custom = funnel_slug is not None
    urls = "".join(
        f"<url><loc>{escape(base + _step_path(entry, custom))}</loc></url>\n"
        for entry in steps
        if not entry["noindex"]
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{urls}</urlset>\n"
    )


def site_file(
    name: str, *, meta: Mapping[str, Any], host: str, funnel_slug: str | None
) -> HttpResponse:
    if name == "/robots.txt":
        body = robots_txt(meta=meta, host=host, funnel_slug=funnel_slug)
        return _text(body, "text/plain; charset=utf-8", meta)
    body = sitemap_xml(meta=meta, host=host, funnel_slug=funnel_slug)
    return _text(body, "application/xml; charset=utf-8", meta)


SITE_FILES = frozenset({"/robots.txt", "/sitemap.xml"})


def domain_check(query_string: str) -> HttpResponse:
    """Caddy on-demand TLS ``ask``: 200 if the domain is a known custom domain."""
    from .services import domain_normalise  # services imports this module

    raw = QueryDict(query_string).get("domain", "")
    try:
        host = domain_normalise(raw)
    except Exception:
        host = ""
    known = bool(host) and selectors.domain_exists(host=host)
    response = HttpResponse(
        "ok" if known else "unknown domain",
        status=200 if known else 404,
        content_type="text/plain; charset=utf-8",
    )
    response["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------------ hosts
def request_host(meta: Mapping[str, Any]) -> tuple[str, str]:
    """(host name lower-cased without port, Host header as sent) of a request."""
    raw = meta.get("HTTP_HOST") or meta.get("SERVER_NAME", "")
    domain, _ = split_domain_port(raw)
    return domain.rstrip("."), raw


_hosts_memo: dict[tuple, tuple[set[str], list[str], str]] = {}


def _app_hosts() -> tuple[set[str], list[str], str]:
    """(exact host names, ALLOWED_HOSTS patterns, the Host to hand Django)."""
    memo_key = (tuple(settings.ALLOWED_HOSTS), settings.SITE_URL)
    found = _hosts_memo.get(memo_key)
    if found is None:
        found = _hosts_memo[memo_key] = _app_hosts_compute()
    return found


def _app_hosts_compute() -> tuple[set[str], list[str], str]:
    patterns = list(settings.ALLOWED_HOSTS)
    exact = {h.lower() for h in patterns if not h.startswith(".") and h != "*"}
    site = urlsplit(settings.SITE_URL)
    if site.hostname and validate_host(site.hostname, patterns):
        exact.add(site.hostname.lower())
        forward = site.netloc
    else:
        forward = next(iter(sorted(exact)), "localhost")
    return exact, patterns, forward


def is_app_host(host: str) -> bool:
    exact, patterns, _ = _app_hosts()
    return host in exact or validate_host(host, patterns)


def reserved_prefixes() -> frozenset[str]:
    """First path segments of the app's own URLs: never a funnel on the app host."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found: set[str] = set()

    def walk(patterns: Iterable, prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            first = route.lstrip("^/").split("/", 1)[0]
            if isinstance(p, URLResolver) and not first:
                walk(p.url_patterns, route)
            elif (
                isinstance(p, URLPattern | URLResolver)
                and first
                and "<" not in first
                and "(" not in first
            ):
                found.add(first.rstrip("$"))

    walk(get_resolver().url_patterns, "")
    for url in (settings.STATIC_URL, settings.MEDIA_URL):
        found.add((url or "").strip("/").split("/", 1)[0])
    found.discard("")
    return frozenset(found)


# ------------------------------------------------------------------ WSGI
def _wsgi(response: HttpResponse, start_response: Callable, method: str) -> list:
    headers = list(response.items())
    headers += [("Set-Cookie", c.output(header="")) for c in response.cookies.values()]
    start_response(f"{response.status_code} {response.reason_phrase}", headers)
    return [] if method == "HEAD" else [response.content]


class PublicDispatcher:
    """WSGI middleware in front of Django: the lean path and the host routing."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self._reserved: frozenset[str] | None = None

    @property
    def reserved(self) -> frozenset[str]:
        if self._reserved is None:
            self._reserved = reserved_prefixes()
        return self._reserved

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        host, raw_host = request_host(environ)
        exact, patterns, forward = _app_hosts()
        safe = method in ("GET", "HEAD")
        if path == "/domains/check" and safe:
            return _wsgi(
                domain_check(environ.get("QUERY_STRING", "")), start_response, method
            )
        funnel = None if host in exact else domain_funnel(host) if host else None
        if funnel is None:
            if host not in exact and not validate_host(host, patterns):
                return _wsgi(not_found(), start_response, method)
            if safe:
                response = self._app_host(environ, path, raw_host)
                if isinstance(response, PageView):
                    return _wsgi_page(response, start_response, method)
                if response is not None:
                    return _wsgi(response, start_response, method)
            return self.app(environ, start_response)
        return self._custom(
            environ, start_response, path, method, funnel, raw_host, forward
        )

    def _app_host(
        self, environ: dict, path: str, raw_host: str
    ) -> PageView | HttpResponse | None:
        if path in SITE_FILES:
            return site_file(path, meta=environ, host=raw_host, funnel_slug=None)
        match = _PAGE_RE.match(path)
        if match is None or match[1] in self.reserved:
            return None
        if settings.SECURE_SSL_REDIRECT and not _is_secure(environ):
            return None  # Django's SecurityMiddleware redirects
        ref = live_ref(match[1], match[2])
        if ref is None:
            return None  # Django answers its 404 page
        return page_view(ref=ref, meta=environ)

    def _custom(
        self,
        environ: dict,
        start_response: Callable,
        path: str,
        method: str,
        funnel: str,
        raw_host: str,
        forward: str,
    ) -> Iterable[bytes]:
        prefix = f"/{funnel}"
        # Links rendered for the app host ("/<funnel>/<step>/") work here too.
        local = path[len(prefix) :] if path.startswith(prefix + "/") else path
        if method in ("GET", "HEAD"):
            if local in SITE_FILES:
                response = site_file(
                    local, meta=environ, host=raw_host, funnel_slug=funnel
                )
                return _wsgi(response, start_response, method)
            match = _STEP_RE.match(local)
            if match is not None:
                ref = live_ref(funnel, match[1])
                if ref is None:
                    return _wsgi(not_found(), start_response, method)
                view = page_view(ref=ref, meta=environ, strip_prefix=prefix)
                return _wsgi_page(view, start_response, method)
        static = (settings.STATIC_URL, settings.MEDIA_URL)
        if path.startswith(static):
            target = path
        elif _ENDPOINT_RE.match(prefix + local) and local != "/":
            target = prefix + local
        elif local == "/" and method == "POST":
            target = prefix + "/"
        else:
            return _wsgi(not_found(), start_response, method)
        inner = dict(environ)
        inner["PATH_INFO"] = target
        inner["HTTP_HOST"] = forward
        inner["openfunnels.custom_host"] = raw_host
        inner.pop("HTTP_X_FORWARDED_HOST", None)

        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            # Redirects to the funnel's own pages stay on the custom domain.
            fixed = [
                (k, v[len(prefix) :])
                if k.lower() == "location" and v.startswith(prefix + "/")
                else (k, v)
                for k, v in headers
            ]
            return start_response(status, fixed, exc_info)

        return self.app(inner, start)
