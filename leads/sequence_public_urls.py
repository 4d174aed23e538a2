"""Sequence e-mail endpoints, included by the public route table (pages.public.urls)
under ``_seq/``: public hosts only."""

from __future__ import annotations

from django.urls import path

from . import sequence_public

urlpatterns = [
    path("u/<uuid:token>/", sequence_public.unsubscribe, name="sequence_unsubscribe"),
    path("o/<uuid:token>.gif", sequence_public.opened, name="sequence_opened"),
    path(
        "c/<uuid:token>/<int:index>/",
        sequence_public.clicked,
        name="sequence_clicked",
    ),
]
