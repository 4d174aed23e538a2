from __future__ import annotations

from django.urls import path

from . import views

app_name = "funnels"

urlpatterns = [
    path("", views.funnel_list, name="list"),
]
