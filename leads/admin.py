from __future__ import annotations

from django.contrib import admin

from .models import FollowUpEmail, Lead, Submission, Tag, Webhook, WebhookDelivery


class SubmissionInline(admin.TabularInline):
    model = Submission
    extra = 0
    fields = ("created_at", "funnel", "step", "data", "consent_given")
    readonly_fields = fields
    can_delete = False


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ("email", "workspace", "first_funnel", "first_source", "created_at")
    list_filter = ("workspace",)
    search_fields = ("email", "first_name", "last_name")
    raw_id_fields = ("first_funnel", "first_step", "tags")
    inlines = [SubmissionInline]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace")


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("url", "workspace", "is_active", "created_at")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event", "webhook", "status", "attempts", "created_at")
    list_filter = ("status", "event")


@admin.register(FollowUpEmail)
class FollowUpEmailAdmin(admin.ModelAdmin):
    list_display = ("subject", "step", "is_enabled")
