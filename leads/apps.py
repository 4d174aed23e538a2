from __future__ import annotations

from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"

    def ready(self) -> None:
        from analytics.signals import linked_visitors_stored

        from .services import leads_first_touch_backfill

        linked_visitors_stored.connect(
            leads_first_touch_backfill, dispatch_uid="leads-first-touch"
        )
