from __future__ import annotations

from django.contrib import admin

from .models import Funnel, Step


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    fields = ("position", "name", "slug", "kind", "accept_target", "decline_target")
    fk_name = "funnel"


@admin.register(Funnel)
class FunnelAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "slug", "created_at", "published_at")
    list_filter = ("workspace",)
    search_fields = ("name", "slug")
    inlines = [StepInline]
