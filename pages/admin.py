from __future__ import annotations

from django.contrib import admin

from .models import FunnelTheme, ImageAsset, Page, PageVersion


@admin.register(Page)
class PageAdmin(admin.ModelAdmin):
    list_display = ["__str__", "workspace", "draft_revision", "published_version"]
    raw_id_fields = ["step", "published_version"]


@admin.register(PageVersion)
class PageVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "created_at", "published_by"]
    raw_id_fields = ["page"]


admin.site.register(FunnelTheme)
admin.site.register(ImageAsset)
