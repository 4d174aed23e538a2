from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from . import api
from .health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls()),
    path("", include("accounts.urls")),
    path("", include("funnels.urls")),
    path("", include("funnels.product_urls")),
    path("", include("leads.urls")),
    path("", include("analytics.urls")),
    path("", include("pages.urls")),
    path("", include("pages.domain_urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# Published funnels at /<funnel-slug>/...: last, so app URLs always win.
urlpatterns += [path("", include("pages.public"))]
