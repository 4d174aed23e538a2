from __future__ import annotations

from django.urls import path

from . import leak_views, order_views, payment_webhooks, sequence_views, views

app_name = "leads"

urlpatterns = [
    path("leads/", views.lead_list, name="list"),
    path("leads/export.csv", views.lead_export_csv, name="export_csv"),
    path("leads/exports/", views.lead_export_create, name="export_create"),
    path("leads/exports/<int:pk>/", views.lead_export_status, name="export_status"),
    path(
        "leads/exports/<int:pk>/download/",
        views.lead_export_download,
        name="export_download",
    ),
    path("leads/tag/", views.lead_bulk_tag, name="bulk_tag"),
    path("leads/dropped/", leak_views.dropped, name="dropped"),
    path("leads/dropped.csv", leak_views.dropped_csv, name="dropped_csv"),
    path("leads/dropped/tag/", leak_views.dropped_tag, name="dropped_tag"),
    path(
        "leads/dropped/sequence/",
        leak_views.dropped_sequence,
        name="dropped_sequence",
    ),
    path("sequences/", sequence_views.sequence_list, name="sequences"),
    path("sequences/new/", sequence_views.sequence_create, name="sequence_create"),
    path("sequences/<int:pk>/", sequence_views.sequence_detail, name="sequence_detail"),
    path(
        "sequences/<int:pk>/edit/", sequence_views.sequence_edit, name="sequence_edit"
    ),
    path(
        "sequences/<int:pk>/steps/",
        sequence_views.sequence_step_add,
        name="sequence_step_add",
    ),
    path(
        "sequences/<int:pk>/steps/<int:step_pk>/",
        sequence_views.sequence_step_edit,
        name="sequence_step_edit",
    ),
    path(
        "sequences/<int:pk>/steps/<int:step_pk>/delete/",
        sequence_views.sequence_step_delete,
        name="sequence_step_delete",
    ),
    path("leads/<int:pk>/", views.lead_detail, name="detail"),
    path("leads/<int:pk>/export.json", views.lead_export_json, name="export_json"),
    path("leads/<int:pk>/erase/", views.lead_erase, name="erase"),
    path("orders/", order_views.order_list, name="orders"),
    path("orders/export.csv", order_views.order_export_csv, name="orders_csv"),
    path("orders/<int:pk>/", order_views.order_detail, name="order_detail"),
    path("orders/<int:pk>/refund/", order_views.order_refund, name="order_refund"),
    path("steps/<int:step_pk>/offer/", order_views.step_offer, name="step_offer"),
    path("settings/webhooks/", views.webhook_list, name="webhooks"),
    path(
        "webhooks/<slug:gateway>/",
        payment_webhooks.gateway_webhook,
        name="gateway_webhook",
    ),
    path(
        "settings/webhooks/<int:pk>/delete/",
        views.webhook_delete,
        name="webhook_delete",
    ),
    path(
        "settings/webhooks/deliveries/<int:pk>/resend/",
        views.webhook_resend,
        name="webhook_resend",
    ),
]
