from __future__ import annotations

from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("analytics/", views.overview, name="overview"),
]
