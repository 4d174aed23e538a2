from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import ApiToken, AuditEntry, Invitation, Membership, User, Workspace
from .services import audit_erasable, workspace_delete


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "full_name", "is_staff", "date_joined")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),
    )


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "public_id", "created_at")
    search_fields = ("name", "public_id")
    inlines = [MembershipInline]

    # A workspace's audit log goes with it (the log is otherwise append-only).
    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        workspace_delete(workspace=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with audit_erasable():
            super().delete_queryset(request, queryset)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "role", "prefix", "created_at", "revoked_at")
    exclude = ("hashed",)
    readonly_fields = ("prefix", "last_used_at", "last_used_ip")


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "workspace", "actor_label", "action", "target_label")
    list_filter = ("action",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "workspace", "role", "created_at", "accepted_at")
    list_filter = ("role",)
    search_fields = ("email",)
    exclude = ("token",)
