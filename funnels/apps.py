from __future__ import annotations

from django.apps import AppConfig


class FunnelsConfig(AppConfig):
    name = "funnels"
