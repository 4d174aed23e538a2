from __future__ import annotations

from django.urls import path

from . import views

app_name = "funnels"

urlpatterns = [
    path("", views.home, name="home"),
    path("funnels/", views.funnel_list, name="list"),
    path("funnels/new/", views.funnel_create, name="create"),
    path("funnels/<int:pk>/", views.funnel_detail, name="detail"),
    path("funnels/<int:pk>/settings/", views.funnel_update, name="update"),
    path("funnels/<int:pk>/duplicate/", views.funnel_duplicate, name="duplicate"),
    path("funnels/<int:pk>/archive/", views.funnel_archive, name="archive"),
    path("funnels/<int:pk>/unarchive/", views.funnel_unarchive, name="unarchive"),
    path("funnels/<int:pk>/delete/", views.funnel_delete, name="delete"),
    path("funnels/<int:pk>/steps/", views.step_create, name="step_create"),
    path("funnels/<int:pk>/steps/order/", views.step_reorder, name="step_reorder"),
    path(
        "funnels/<int:pk>/steps/<int:step_pk>/", views.step_update, name="step_update"
    ),
    path(
        "funnels/<int:pk>/steps/<int:step_pk>/move/", views.step_move, name="step_move"
    ),
    path(
        "funnels/<int:pk>/steps/<int:step_pk>/delete/",
        views.step_delete,
        name="step_delete",
    ),
]
