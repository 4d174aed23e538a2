"""Content-Security-Policy for the admin and for published pages.

The admin runs only its own files: no inline script, no eval, nothing from another
host, and it cannot be framed. A published page may run its own head/footer code
and Custom HTML, so its policy allows inline script plus exactly the hosts that
code names (and the services those hosts are known to talk to), never the app's
own hosts. Scripts of one workspace cannot read the admin either way: they run on
another origin (pages.public.hosts); the policy is the second wall.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings

ADMIN_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Inline style attributes (widths, colours set from the document) are fine;
        # CSS cannot run script.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        # The editor shows Custom HTML in sandboxed srcdoc frames; they inherit this
        # policy, so its scripts run only on the published page, never here.
        "frame-src 'self' blob: data:",
        "media-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# Hosts a page's video blocks may embed.
VIDEO_HOSTS = (
    "https://www.youtube-nocookie.com",
    "https://www.youtube.com",
    "https://player.vimeo.com",
    "https://fast.wistia.net",
    "https://www.loom.com",
)
STRIPE = {
    "script": ("https://js.stripe.com",),
    "frame": ("https://js.stripe.com", "https://hooks.stripe.com"),
    "connect": ("https://api.stripe.com",),
}
# A snippet that loads from one of these hosts then talks to the others.
COMPANIONS = {
    "www.googletagmanager.com": (
        "https://*.googletagmanager.com",
        "https://*.google-analytics.com",
        "https://*.analytics.google.com",
        "https://*.g.doubleclick.net",
        "https://*.google.com",
    ),
    "www.google-analytics.com": (
        "https://*.google-analytics.com",
        "https://*.analytics.google.com",
    ),
    "connect.facebook.net": ("https://www.facebook.com", "https://*.facebook.com"),
    "static.hotjar.com": (
        "https://*.hotjar.com",
        "https://*.hotjar.io",
        "wss://*.hotjar.com",
    ),
    "snap.licdn.com": ("https://px.ads.linkedin.com", "https://*.linkedin.com"),
    "analytics.tiktok.com": ("https://*.tiktok.com",),
    "plausible.io": ("https://plausible.io",),
    "cdn.usefathom.com": ("https://*.usefathom.com",),
}
_URL_RE = re.compile(
    r"(?i)(?<![a-z0-9+.:-])(https?:|wss?:)?//"
    r"([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?)"
)
_HEAD_RE = re.compile(r"<!--of:code-->(.*?)<!--/of:code-->", re.S)
_SRCDOC_RE = re.compile(r'srcdoc="([^"]*)"', re.S)


def _app_host_names() -> set[str]:
    names = {h.lower() for h in settings.APP_HOSTS if not h.startswith((".", "*"))}
    site = urlsplit(settings.SITE_URL).hostname
    if site:
        names.add(site.lower())
    return names


def code_sources(code: str) -> list[str]:
    """The origins a piece of head/footer/custom code names, app hosts left out."""
    app = _app_host_names()
    found: dict[str, None] = {}
    for scheme, host in _URL_RE.findall(code):
        name = host.lower().split(":", 1)[0]
        if "." not in name or name in app:
            continue
        scheme = (scheme or "https:").lower()
        found[f"{scheme}//{host.lower()}"] = None
        for extra in COMPANIONS.get(name, ()):
            found[extra] = None
    return list(found)


def workspace_code(html: str) -> str:
    """The parts of a published page the workspace wrote itself (head/footer code
    between markers, Custom HTML frames); the whole page for older versions."""
    parts = _HEAD_RE.findall(html)
    parts += _SRCDOC_RE.findall(html)
    return "\n".join(parts) if "<!--of:code-->" in html else html


_by_version: dict[tuple, str] = {}


def version_policy(version_id: int, html: str) -> str:
    """``page_policy`` of a published version (immutable, so cached by id)."""
    key = (version_id, settings.PAYMENT_GATEWAY, settings.SITE_URL)
    policy = _by_version.get(key)
    if policy is None:
        if len(_by_version) > 4096:
            _by_version.clear()
        policy = _by_version[key] = page_policy(html)
    return policy


def page_policy(html: str) -> str:
    """The policy of one published page."""
    from html import unescape

    code = workspace_code(html)
    sources = code_sources(unescape(code))
    has_code = bool(code.strip())
    extra = " ".join(sources)
    stripe = settings.PAYMENT_GATEWAY == "stripe"
    script = ["'self'", *(["'unsafe-inline'"] if has_code else []), extra]
    frame = ["'self'", *VIDEO_HOSTS, extra]
    connect = ["'self'", extra]
    if stripe:
        script += STRIPE["script"]
        frame += STRIPE["frame"]
        connect += STRIPE["connect"]
    directives = [
        "default-src 'self'",
        "script-src " + " ".join(p for p in script if p),
        "style-src 'self' 'unsafe-inline' " + extra,
        # Tracking pixels and remote images are common in marketers' code.
        "img-src 'self' data: blob: https: " + extra,
        "font-src 'self' data: " + extra,
        "connect-src " + " ".join(p for p in connect if p),
        "frame-src " + " ".join(p for p in frame if p),
        "media-src 'self' https: " + extra,
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
    return "; ".join(d.strip() for d in directives)


def public_default_policy() -> str:
    """Public responses that are not a page (errors, receipts, 3-D Secure page)."""
    return page_policy("")
