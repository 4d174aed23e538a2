from __future__ import annotations

from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("analytics/", views.overview, name="overview"),
    path("analytics/funnels/<int:pk>/", views.funnel_dashboard, name="funnel"),
    path(
        "analytics/funnels/<int:pk>/journey/",
        views.funnel_journey,
        name="journey",
    ),
    path(
        "analytics/funnels/<int:pk>/<slug:table>.csv",
        views.funnel_export,
        name="funnel_export",
    ),
    path("analytics/customers/", views.customer_value, name="customers"),
    path("analytics/ad-spend/", views.ad_spend, name="ad_spend"),
    path(
        "analytics/ad-spend/<int:pk>/delete/",
        views.ad_spend_delete,
        name="ad_spend_delete",
    ),
]
