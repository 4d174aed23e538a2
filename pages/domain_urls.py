from __future__ import annotations

from django.urls import path

from . import domain_views

app_name = "domains"

urlpatterns = [
    path("settings/domains/", domain_views.domain_list, name="list"),
    path(
        "settings/domains/<int:pk>/delete/",
        domain_views.domain_delete,
        name="delete",
    ),
]
