"""Host routing and Content-Security-Policy, for every request.

``HostRoutingMiddleware`` runs first. On an app host the request goes on to the app
(``ROOT_URLCONF``). On a public host it gets ``request.public`` (a
``pages.public.hosts.PublicHost``) and the public route table
(``request.urlconf = "pages.public.urls"``). A custom domain serves one funnel at
``/`` and ``/<step>/``: its paths get the funnel's slug in front before routing,
and redirects to ``/<funnel>/...`` lose it again, so the same route table serves
both kinds of public host. Any other host gets a 404; an old workspace slug a
permanent redirect to the current one.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect

from . import csp, hosts

PUBLIC_URLCONF = "pages.public.urls"
# Paths a custom domain answers as they are: site files and assets.
_ROOT_FILES = ("/robots.txt", "/sitemap.xml", "/favicon.ico")
# Operational endpoints asked by the proxy and health checks under whatever Host
# they use inside the deployment's network (e.g. http://web:8000/domains/check).
_ANY_HOST = ("/healthz", "/domains/check")

Handler = Callable[[HttpRequest], HttpResponse]


def _not_found() -> HttpResponse:
    from .views import not_found_response

    return not_found_response()


class HostRoutingMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = hosts.classify(request)
        request.public = None  # type: ignore[attr-defined]
        if found == hosts.APP:
            return self.get_response(request)
        if found is None:
            if request.path_info in _ANY_HOST:
                return self.get_response(request)
            return _not_found()
        if isinstance(found, hosts.Moved):
            scheme = "https" if request.is_secure() else "http"
            return HttpResponsePermanentRedirect(
                f"{scheme}://{found.host}{request.get_full_path()}"
            )
        assert isinstance(found, hosts.PublicHost)
        # Read back by views._host: not an attribute HttpRequest declares.
        request.public = found  # type: ignore[attr-defined]
        request.urlconf = PUBLIC_URLCONF
        if not found.is_domain:
            return self.get_response(request)
        prefix = found.prefix
        path = request.path_info
        if not (
            path == prefix
            or path.startswith(prefix + "/")
            or path in _ROOT_FILES
            or path.startswith((settings.STATIC_URL, settings.MEDIA_URL, "/_seq/"))
        ):
            request.path_info = prefix + path
        response = self.get_response(request)
        location = response.get("Location", "")
        if location.startswith(prefix + "/"):
            response["Location"] = location[len(prefix) :]
        return response

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        """A visitor never sees a 500 because the database is briefly away."""
        if getattr(request, "public", None) is not None and isinstance(
            exception, OperationalError | InterfaceError
        ):
            from .views import unavailable_response

            return unavailable_response()
        return None


class ContentSecurityPolicyMiddleware:
    """The admin's strict policy, or a public page's own (set by its view)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            if getattr(request, "public", None) is not None:
                response["Content-Security-Policy"] = csp.public_default_policy()
            else:
                response["Content-Security-Policy"] = csp.ADMIN_POLICY
        return response
