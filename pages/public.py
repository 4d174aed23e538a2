"""Anonymous serving of published pages at /<funnel-slug>/<step-slug>/.

Serving never renders: the HTML was rendered once at publish time. No session is
touched, so no cookie is set. Unknown or unpublished → 404.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import selectors


# Forms on published pages post to the next step. Until the leads app captures
# them, a POST changes nothing and is answered with a redirect to the same page
# (no session, so no CSRF token to check).
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def serve(
    request: HttpRequest, funnel_slug: str, step_slug: str | None = None
) -> HttpResponse:
    version = selectors.published_page(funnel_slug=funnel_slug, step_slug=step_slug)
    if version is None:
        raise Http404("No published page here.")
    if request.method == "POST":
        return HttpResponseRedirect(request.path, status=303)
    response = HttpResponse(version.html)
    response["Cache-Control"] = "public, max-age=60"
    return response


app_name = "public"

urlpatterns = [
    path("<slug:funnel_slug>/", serve, name="funnel"),
    path("<slug:funnel_slug>/<slug:step_slug>/", serve, name="step"),
]
