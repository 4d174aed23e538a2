from __future__ import annotations

from django.contrib import admin

from .models import Visitor


@admin.register(Visitor)
class VisitorAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "workspace",
        "utm_source",
        "device_class",
        "first_seen",
        "last_seen",
        "lead_id",
    )
    list_filter = ("device_class",)
    search_fields = ("public_id", "utm_source", "utm_campaign")
    raw_id_fields = ("workspace",)
    readonly_fields = ("first_seen", "last_seen")
