"""Views of the public hosts: published pages, robots.txt, sitemap.xml, media.

Reached only through the public route table (pages.public.urls), so
``request.public`` names the workspace (and, on a custom domain, the funnel)
every lookup is scoped to.
"""

from __future__ import annotations

import posixpath
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
)
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from django.views.static import serve as static_serve

from .. import serving
from . import csp
from .hosts import PublicHost

MEDIA_MAX_AGE = 60 * 60 * 24 * 365  # uploaded files never change under their name


def _message(title: str, message: str, status: int) -> HttpResponse:
    body = render_to_string(
        "pages/public/message.html", {"title": title, "message": message}
    )
    response = HttpResponse(body, status=status)
    response["Cache-Control"] = "no-store" if status >= 500 else "no-cache"
    return response


def not_found_response() -> HttpResponse:
    return _message(
        "Page not found", "There is no published page at this address.", 404
    )


def unavailable_response() -> HttpResponse:
    response = _message(
        "Back in a moment",
        "This page is briefly unavailable. Please try again in a minute.",
        503,
    )
    response["Retry-After"] = "30"
    return response


def handler404(
    request: HttpRequest, exception: Exception | None = None
) -> HttpResponse:
    return not_found_response()


def handler500(request: HttpRequest) -> HttpResponse:
    return _message(
        "Something went wrong",
        "We could not complete your request. Please try again in a moment.",
        500,
    )


def _host(request: HttpRequest) -> PublicHost:
    # Set by the public-host middleware: not an attribute HttpRequest declares.
    return request.public  # type: ignore[attr-defined]


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def page(
    request: HttpRequest, funnel_slug: str, step_slug: str | None = None
) -> HttpResponse:
    host = _host(request)
    try:
        ref = serving.live_ref(host.workspace_id, funnel_slug, step_slug)
    except serving.Unavailable:
        return unavailable_response()
    if ref is None:
        raise Http404("No published page here.")
    if request.method == "POST":
        # A form without its own endpoint: show the page again.
        return HttpResponseRedirect(request.path, status=303)
    try:
        response = serving.page_response(
            request, ref=ref, strip_prefix=host.prefix or None
        )
    except serving.Unavailable:
        return unavailable_response()
    html = serving.html_parts(response.version_id, host.prefix or None)[0]  # type: ignore[attr-defined]
    response["Content-Security-Policy"] = csp.version_policy(
        response.version_id,  # type: ignore[attr-defined]
        html,
    )
    return response


def _step_path(entry: dict, host: PublicHost) -> str:
    if host.is_domain:
        return "/" if entry["first"] else f"/{entry['step']}/"
    if entry["first"]:
        return f"/{entry['funnel']}/"
    return f"/{entry['funnel']}/{entry['step']}/"


def _base_url(request: HttpRequest) -> str:
    return f"{request.scheme}://{_host(request).host}"


def _steps(request: HttpRequest) -> list[dict]:
    host = _host(request)
    return serving.sitemap_steps(host.workspace_id, host.funnel_slug)


def _text(body: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
def robots_txt(request: HttpRequest) -> HttpResponse:
    """Allow the published steps; disallow those whose page asks for noindex."""
    host = _host(request)
    try:
        steps = _steps(request)
    except serving.Unavailable:
        return unavailable_response()
    lines = ["User-agent: *"]
    for entry in steps:
        if entry["noindex"]:
            path = _step_path(entry, host)
            # A first step answers at its own path too; "$" ends a path pattern.
            lines.append(
                f"Disallow: {path}$" if entry["first"] else f"Disallow: {path}"
            )
            if entry["first"]:
                prefix = "" if host.is_domain else f"/{entry['funnel']}"
                lines.append(f"Disallow: {prefix}/{entry['step']}/")
    if len(lines) == 1:
        lines.append("Disallow:")
    lines += ["", f"Sitemap: {_base_url(request)}/sitemap.xml", ""]
    return _text("\n".join(lines), "text/plain; charset=utf-8")


@require_GET
def sitemap_xml(request: HttpRequest) -> HttpResponse:
    host = _host(request)
    try:
        steps = _steps(request)
    except serving.Unavailable:
        return unavailable_response()
    base = _base_url(request)
    urls = "".join(
        f"<url><loc>{escape(base + _step_path(entry, host))}</loc></url>\n"
        for entry in steps
        if not entry["noindex"]
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{urls}</urlset>\n"
    )
    return _text(body, "application/xml; charset=utf-8")


@require_GET
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """Uploaded images, for `make run` and any deployment without a media proxy.

    Names never change their bytes, so a year of caching is safe. The folder is the
    same for every host, so any host answers any image's URL: image URLs are
    unguessable but not private (the same holds behind the compose proxy).
    """
    if not settings.SERVE_MEDIA:
        raise Http404
    path = posixpath.normpath(path).lstrip("/")
    response = static_serve(request, path, document_root=str(settings.MEDIA_ROOT))
    response["Cache-Control"] = f"public, max-age={MEDIA_MAX_AGE}, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    return response
