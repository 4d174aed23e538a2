"""Anonymous serving of published pages at /<funnel-slug>/ and /<funnel-slug>/<step>/.

In production the WSGI dispatcher (pages.serving.PublicDispatcher, config/wsgi.py)
answers these GETs before Django's URL resolver and middleware; these views are the
same code reached through Django (the test client, a POST to a page, a page that is
not live), plus robots.txt, sitemap.xml and the TLS proxy's domain check. See
pages.serving for what a view costs and how fresh it is.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from . import serving


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def serve(
    request: HttpRequest, funnel_slug: str, step_slug: str | None = None
) -> HttpResponse:
    ref = serving.live_ref(funnel_slug, step_slug)
    if ref is None:
        raise Http404("No published page here.")
    if request.method == "POST":
        # A form without its own endpoint: show the page again.
        return HttpResponseRedirect(request.path, status=303)
    return serving.page_response(ref=ref, meta=request.META)


@require_GET
def site_file(request: HttpRequest) -> HttpResponse:
    """robots.txt and sitemap.xml of the app host (all published funnels)."""
    return serving.site_file(
        request.path, meta=request.META, host=request.get_host(), funnel_slug=None
    )


@require_GET
def domain_check(request: HttpRequest) -> HttpResponse:
    return serving.domain_check(request.META.get("QUERY_STRING", ""))


app_name = "public"

urlpatterns = [
    path("robots.txt", site_file, name="robots"),
    path("sitemap.xml", site_file, name="sitemap"),
    path("domains/check", domain_check, name="domain_check"),
    path("<slug:funnel_slug>/", serve, name="funnel"),
    path("<slug:funnel_slug>/<slug:step_slug>/", serve, name="step"),
]
