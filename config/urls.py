"""The app host's routes. Public hosts use pages.public.urls (one route table for
workspace subdomains and custom domains), chosen per request by
pages.public.middleware.HostRoutingMiddleware; no funnel page answers here."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView, TemplateView

from pages import domain_views
from pages.public import views as public_views

from . import api
from .health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # The admin is nobody's search result (funnels list their pages on their hosts).
    path(
        "robots.txt",
        TemplateView.as_view(template_name="robots.txt", content_type="text/plain"),
        name="robots",
    ),
    # Caddy's on-demand TLS asks here before it gets a certificate for a host.
    path("domains/check", domain_views.domain_check, name="domain_check"),
    path("admin/", admin.site.urls),
    path("api/", RedirectView.as_view(url="/api/v1/", permanent=False)),
    path("api/v1/", api.urls()),
    path("", include("accounts.urls")),
    path("", include("funnels.urls")),
    path("", include("funnels.product_urls")),
    path("", include("leads.urls")),
    path("", include("analytics.urls")),
    path("", include("pages.urls")),
    path("", include("pages.domain_urls")),
    # Images in the editor (public hosts serve them from their own route table).
    re_path(
        rf"^{settings.MEDIA_URL.strip('/')}/(?P<path>.+)$",
        public_views.media,
        name="media",
    ),
]
