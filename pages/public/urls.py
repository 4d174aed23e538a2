"""The public route table: one urlconf for workspace subdomains and custom domains.

pages.public.middleware picks it for every public host (``request.urlconf``). On a
custom domain the middleware puts the domain's funnel slug in front of the path, so
``/`` and ``/<step>/`` there are ``/<funnel>/`` and ``/<funnel>/<step>/`` here.
The endpoints of a step (opt-in, order, upsells, receipt) belong to leads and are
included by name, so the layers keep their direction (pages never imports leads).
"""

from __future__ import annotations

from django.conf import settings
from django.urls import include, path, re_path

from . import views

handler404 = "pages.public.views.handler404"
handler500 = "pages.public.views.handler500"

urlpatterns = [
    path("robots.txt", views.robots_txt, name="robots"),
    path("sitemap.xml", views.sitemap_xml, name="sitemap"),
    re_path(
        rf"^{settings.MEDIA_URL.strip('/')}/(?P<path>.+)$", views.media, name="media"
    ),
    # Sequence e-mails' unsubscribe, pixel and links (before any funnel slug).
    path("_seq/", include("leads.sequence_public_urls")),
    path("<slug:funnel_slug>/", views.page, name="funnel"),
    path(
        "<slug:funnel_slug>/<slug:step_slug>/",
        include(
            [
                path("", views.page, name="step"),
                path("", include("leads.public_urls")),
            ]
        ),
    ),
]
