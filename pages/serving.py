"""The cache behind public serving: live steps, host lookups and page HTML.

Public hosts are routed by pages.public (one urlconf for workspace subdomains and
custom domains); its page view asks this module for what it needs, so a page view
costs in-process lookups, the visitor cookie check (cached HMAC), the split-test
pick, a fresh form token and ONE pipelined Redis round trip that appends the view
and reads the serving generation. Responses, headers and cookies are Django's own.

Staleness: every publish, unpublish, rollback, slug or domain change bumps the
generation key in Redis (now and again after the commit). A process drops its
in-process entries as soon as a round trip shows a new generation, so a change
reaches each worker at its next request. If Redis is unreachable, entries live at
most ``LOCAL_TTL`` seconds.

Outages: every lookup that succeeds is also kept in Redis as the "last known"
answer. When PostgreSQL is down, a lookup falls back to the in-process entry, then
to that copy, so pages that are already published keep being served (their HTML is
cached in Redis too); only what needs the database (a form post) says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from analytics import ingest, shipper
from analytics import services as analytics
from config import proxies
from funnels.public_forms import FORM_TOKEN_PLACEHOLDER, form_token_issue

from . import selectors

logger = logging.getLogger(__name__)

GEN_KEY = "of:serve:gen"
LAST_KNOWN_PREFIX = "of:serve:last:"
LAST_KNOWN_TTL = 60 * 60 * 24 * 7  # a week of outage cover per lookup
LOCAL_TTL = 5.0  # seconds an in-process entry lives when Redis cannot tell
HTML_TTL = 60 * 60 * 24  # Redis copy of a version's HTML (immutable)
_MAX_ENTRIES = 10_000
_PREFETCH = ("Purpose", "Sec-Purpose", "X-Purpose", "X-Moz")
_PREFETCH_META = tuple("HTTP_" + h.upper().replace("-", "_") for h in _PREFETCH)


class Unavailable(Exception):
    """The database is down and no cached answer is known."""


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
# Entries kept across generations, read only when the database is down.
_stale: dict[tuple, Any] = {}


def _redis_gen() -> bytes | None:
    ok, gen = ingest.stream_append_entry_get(None, GEN_KEY)
    if ok:
        _local.note_gen(gen)
    return _local.gen


def _last_known_key(key: tuple) -> str:
    return LAST_KNOWN_PREFIX + ":".join(str(part) for part in key)


def _last_known_save(key: tuple, value: Any) -> None:
    try:
        ingest.redis_client().set(
            _last_known_key(key), json.dumps(value), ex=LAST_KNOWN_TTL
        )
    except Exception:
        logger.debug("serving: could not keep %s", key)


def _last_known(key: tuple) -> Any:
    if key in _stale:
        return _stale[key]
    try:
        raw = ingest.redis_client().get(_last_known_key(key))
    except Exception:
        raw = None
    if raw is None:
        raise Unavailable(key)
    return json.loads(raw)


def _cached(key: tuple, load: Callable[[], Any]) -> Any:
    """``load()`` once per generation (and at most LOCAL_TTL seconds).

    Values are JSON-shaped (dicts, lists, strings), so the last known answer can be
    kept in Redis for outages.
    """
    hit = _local.entries.get(key)
    now = time.monotonic()
    if hit is not None and hit[1] == _local.gen and hit[2] > now:
        return hit[0]
    gen = _redis_gen()  # the generation before loading: a later bump invalidates
    try:
        value = load()
    except DatabaseError:
        logger.warning("serving: database unavailable, using the last known %s", key)
        return _last_known(key)
    if value is not None and _stale.get(key, ...) != value:
        if len(_stale) >= _MAX_ENTRIES:
            _stale.clear()
        _stale[key] = value
        _last_known_save(key, value)
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
    _stale.clear()


def live_ref(workspace_id: int, funnel_slug: str, step_slug: str | None) -> dict | None:
    """What serving needs of a live step of a workspace (None: nothing live there)."""
    return _cached(
        ("ref", workspace_id, funnel_slug, step_slug or ""),
        lambda: selectors.live_page_ref(
            workspace_id=workspace_id, funnel_slug=funnel_slug, step_slug=step_slug
        ),
    )


def public_host(host: str, public_domain: str) -> dict | None:
    """Who a public host belongs to (see pages.selectors.public_host_lookup)."""
    return _cached(
        ("host", host, public_domain),
        lambda: selectors.public_host_lookup(host=host, public_domain=public_domain),
    )


def sitemap_steps(workspace_id: int, funnel_slug: str | None) -> list[dict]:
    return _cached(
        ("sitemap", workspace_id, funnel_slug or ""),
        lambda: selectors.sitemap_steps(
            workspace_id=workspace_id, funnel_slug=funnel_slug
        ),
    )


def _version_html(version_id: int) -> str:
    key = f"of:serve:html:{version_id}"
    client = ingest.redis_client()
    try:
        cached = client.get(key)
        if cached is not None:
            return cached.decode()
    except Exception:
        cached = None
    try:
        html = selectors.version_html(version_id=version_id)
    except DatabaseError as exc:
        raise Unavailable(version_id) from exc
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
    *, visitor_id: Any, step_id: int, variants: Sequence[Sequence[int]]
) -> tuple[int, int, int]:
    """The (page id, version id, weight) a visitor sees on a step.

    Weighted rendezvous hashing: each variant scores ``-ln(u) / weight`` with ``u``
    a hash of (visitor, step, variant) in (0, 1]; the lowest score wins. Sticky per
    visitor and step, each variant wins with probability weight / sum of weights
    (they need not add up to 100), and removing a variant moves only its own
    visitors. Without a visitor (bots, HEAD) the first variant is served.
    """
    if len(variants) == 1 or visitor_id is None:
        return tuple(variants[0])  # type: ignore[return-value]
    visitor = str(visitor_id).encode()
    best = min(
        variants,
        key=lambda v: -math.log(_unit(visitor, step_id, v[0])) / v[2],
    )
    return tuple(best)  # type: ignore[return-value]


# ------------------------------------------------------------------ responses
def page_response(
    request: HttpRequest, *, ref: dict, strip_prefix: str | None = None
) -> HttpResponse:
    """Serve a live step: pick the variant, track the view, stamp the forms."""
    meta = request.META
    # What the analytics calls read of a workspace (a model instance costs ~10 us).
    workspace: Any = SimpleNamespace(
        pk=ref["workspace_id"],
        public_id=ref["workspace_public_id"],
        drop_ip_addresses=ref["drop_ip"],
    )
    cookie = request.COOKIES.get(analytics.visitor_cookie_name(workspace))
    visitor, _visitor_line = analytics.step_view_visitor(
        workspace=workspace,
        funnel_id=ref["funnel_id"],
        step_id=ref["step_id"],
        cookie_value=cookie,
        user_agent=meta.get("HTTP_USER_AGENT", ""),
        method=request.method or "GET",
        headers={
            name: meta[key]
            for name, key in zip(_PREFETCH, _PREFETCH_META, strict=True)
            if key in meta
        },
        query=request.GET,
        referrer=meta.get("HTTP_REFERER", ""),
        ip=proxies.client_ip(meta),
    )
    page_id, version_id, _ = variant_pick(
        visitor_id=visitor.public_id if visitor else None,
        step_id=ref["step_id"],
        variants=ref["variants"],
    )
    parts = html_parts(version_id, strip_prefix)
    if len(parts) > 1:
        body = form_token_issue(step_id=ref["step_id"], variant_id=page_id).join(parts)
    else:
        body = parts[0]
    if visitor is not None:
        # The view is a line in the view log, as nginx writes it (pages.edge): the
        # shipper (analytics.shipper) stores it. No Redis, no SQL on this path.
        try:
            shipper.view_log_write(
                {
                    "t": f"{time.time():.3f}",
                    "id": uuid.uuid4().hex,
                    "v": "ofv=" + visitor.public_id.hex.upper(),
                    "s": str(ref["step_id"]),
                    "p": f"{page_id}-{version_id}",
                    "k": "d" if strip_prefix else "s",
                    "m": request.method or "GET",
                    "st": "200",
                    "q": meta.get("QUERY_STRING", ""),
                    "r": meta.get("HTTP_REFERER", ""),
                    "ua": meta.get("HTTP_USER_AGENT", ""),
                    "pf": "".join(meta.get(key, "") for key in _PREFETCH_META),
                    "ip": proxies.client_ip(meta) or "",
                }
            )
        except OSError:
            logger.error("serving: view of step %s not logged", ref["step_id"])
    # Whether published state changed (one GET; tracking does not depend on it).
    ok, gen = ingest.stream_append_entry_get(None, GEN_KEY)
    if ok:
        _local.note_gen(gen)
    response = HttpResponse(body)
    # Every view is counted, so no shared cache may answer for us.
    response["Cache-Control"] = "private, no-cache"
    response.public_page = True  # type: ignore[attr-defined]
    response.version_id = version_id  # type: ignore[attr-defined]
    return analytics.visitor_cookie_set(response, workspace=workspace, visitor=visitor)
