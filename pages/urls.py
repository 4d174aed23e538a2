from __future__ import annotations

from django.urls import path

from . import split_views, views

app_name = "pages"

urlpatterns = [
    path("steps/<int:step_pk>/edit/", views.step_edit, name="step_edit"),
    path("pages/<int:pk>/edit/", views.editor, name="editor"),
    path("pages/<int:pk>/edit/do/", views.edit, name="edit"),
    path(
        "pages/<int:pk>/blocks/<str:block_id>/",
        views.block_settings,
        name="block_settings",
    ),
    path(
        "pages/<int:pk>/blocks/<str:block_id>/save/",
        views.block_update,
        name="block_update",
    ),
    path(
        "pages/<int:pk>/blocks/<str:block_id>/text/",
        views.block_inplace,
        name="block_inplace",
    ),
    path(
        "pages/<int:pk>/blocks/<str:block_id>/style/",
        views.block_style,
        name="block_style",
    ),
    path(
        "pages/<int:pk>/sections/<str:section_id>/",
        views.section_settings,
        name="section_settings",
    ),
    path(
        "pages/<int:pk>/sections/<str:section_id>/style/",
        views.section_style,
        name="section_style",
    ),
    path(
        "pages/<int:pk>/sections/<str:section_id>/image/",
        views.section_image,
        name="section_image",
    ),
    path("pages/<int:pk>/history/<str:direction>/", views.history, name="history"),
    path("pages/<int:pk>/images/", views.image_upload, name="image_upload"),
    path("pages/<int:pk>/settings/", views.page_settings, name="settings"),
    path("pages/<int:pk>/theme/", views.theme, name="theme"),
    path("pages/<int:pk>/versions/", views.versions, name="versions"),
    path(
        "pages/<int:pk>/versions/<int:version_pk>/<str:action>/",
        views.version_action,
        name="version_action",
    ),
    path("pages/<int:pk>/publish/", views.publish, name="publish"),
    path("pages/<int:pk>/publish/check/", views.publish_check, name="publish_check"),
    path("settings/page-speed/", views.speed_budget, name="speed_budget"),
    path(
        "funnels/<int:funnel_pk>/publish/", views.funnel_publish, name="funnel_publish"
    ),
    path("steps/<int:step_pk>/variants/", split_views.variants, name="variants"),
    path(
        "steps/<int:step_pk>/variants/add/",
        split_views.variant_add,
        name="variant_add",
    ),
    path(
        "steps/<int:step_pk>/split-test/",
        split_views.split_results,
        name="split_results",
    ),
    path("pages/<int:pk>/rename/", split_views.variant_rename, name="variant_rename"),
    path(
        "pages/<int:pk>/serving/<str:action>/",
        split_views.variant_state,
        name="variant_state",
    ),
    path("pages/<int:pk>/remove/", split_views.variant_remove, name="variant_remove"),
    path(
        "pages/<int:pk>/declare-winner/",
        split_views.split_declare,
        name="split_declare",
    ),
    path("funnel-templates/", views.template_gallery, name="template_gallery"),
    path(
        "funnel-templates/<slug:key>/", views.template_preview, name="template_preview"
    ),
    path(
        "funnel-templates/<slug:key>/<int:index>/",
        views.template_preview,
        name="template_preview_step",
    ),
]
