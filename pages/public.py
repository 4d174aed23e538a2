"""Anonymous serving of published pages at /<funnel-slug>/ and /<funnel-slug>/<step>/.

The hot path does no rendering and, when warm, no SQL: one Redis GET finds which
published version is live (and its workspace), one more fetches the HTML rendered at
publish time. Publishing or unpublishing drops the first key, so a change is live at
once. Per response, the view records the step view (one Redis round trip, see
analytics.services.step_view_record), sets the first-party visitor cookie and stamps
a fresh signed token into the page's forms. No session is read or written.
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.models import Workspace
from analytics import services as analytics
from funnels.public_forms import FORM_TOKEN_PLACEHOLDER, form_token_issue

from . import selectors

logger = logging.getLogger(__name__)
REF_TTL = 60  # bounds staleness if a request races a publish
HTML_TTL = 60 * 60 * 24


def _cache_get(key: str):
    try:
        return cache.get(key)
    except Exception:  # Redis down: serve from Postgres
        return None


def _cache_set(key: str, value, ttl: int) -> None:
    try:
        cache.set(key, value, ttl)
    except Exception:
        logger.warning("public pages: cache unavailable")


def _live_ref(funnel_slug: str, step_slug: str | None) -> dict | None:
    key = selectors.live_ref_key(funnel_slug, step_slug)
    ref = _cache_get(key)
    if ref is None:
        ref = selectors.live_page_ref(funnel_slug=funnel_slug, step_slug=step_slug)
        if ref is None:
            return None
        _cache_set(key, ref, REF_TTL)
    return ref


def _html(version_id: int) -> str:
    key = f"of:pv:{version_id}"
    html = _cache_get(key)
    if html is None:
        html = selectors.version_html(version_id=version_id)
        _cache_set(key, html, HTML_TTL)
    return html


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def serve(
    request: HttpRequest, funnel_slug: str, step_slug: str | None = None
) -> HttpResponse:
    ref = _live_ref(funnel_slug, step_slug)
    if ref is None:
        raise Http404("No published page here.")
    if request.method == "POST":
        # A form without its own endpoint: show the page again.
        return HttpResponseRedirect(request.path, status=303)
    html = _html(ref["version_id"])
    if FORM_TOKEN_PLACEHOLDER in html:
        html = html.replace(
            FORM_TOKEN_PLACEHOLDER, form_token_issue(step_id=ref["step_id"])
        )
    response = HttpResponse(html)
    # Every view is counted, so no shared cache may answer for us.
    response["Cache-Control"] = "private, no-cache"
    workspace = Workspace(
        pk=ref["workspace_id"],
        public_id=ref["workspace_public_id"],
        drop_ip_addresses=ref["drop_ip"],
    )
    visitor = analytics.step_view_record(
        request=request,
        workspace=workspace,
        funnel=ref["funnel_id"],
        step=ref["step_id"],
        page_version_id=ref["version_id"],
        variant_id=ref["page_id"],
    )
    return analytics.visitor_cookie_set(response, workspace=workspace, visitor=visitor)


app_name = "public"

urlpatterns = [
    path("<slug:funnel_slug>/", serve, name="funnel"),
    path("<slug:funnel_slug>/<slug:step_slug>/", serve, name="step"),
]
