"""Endpoints of a published step, included by the public route table
(pages.public.urls) under ``<funnel_slug>/<step_slug>/``: public hosts only."""

from __future__ import annotations

from django.urls import path

from . import public

urlpatterns = [
    path("optin/", public.optin_submit, name="optin"),
    path("order/", public.order_submit, name="order"),
    path("contact/", public.order_contact, name="order_contact"),
    path("order/confirm/", public.order_confirm, name="order_confirm"),
    path("accept/", public.upsell_respond, {"answer": "accept"}, name="upsell_accept"),
    path(
        "decline/",
        public.upsell_respond,
        {"answer": "decline"},
        name="upsell_decline",
    ),
    path("receipt/", public.receipt, name="receipt"),
]
