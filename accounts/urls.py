from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("signup/sent/", views.signup_sent, name="signup_sent"),
    path("signup/<str:token>/", views.signup_confirm, name="signup_confirm"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="accounts/password_reset_done.html"
        ),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("workspaces/new/", views.workspace_create, name="workspace_create"),
    path(
        "workspaces/<str:public_id>/switch/",
        views.workspace_switch,
        name="workspace_switch",
    ),
    path("settings/", views.workspace_settings, name="settings"),
    path("settings/members/", views.members, name="members"),
    path("settings/members/<int:pk>/role/", views.member_role, name="member_role"),
    path(
        "settings/members/<int:pk>/remove/", views.member_remove, name="member_remove"
    ),
    path(
        "settings/invitations/<int:pk>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("settings/api/", views.api_tokens, name="api_tokens"),
    path(
        "settings/api/<int:pk>/revoke/",
        views.api_token_revoke,
        name="api_token_revoke",
    ),
    path("settings/audit-log/", views.audit_log, name="audit_log"),
    path("settings/audit-log/export/", views.audit_export, name="audit_export"),
    path("invite/<str:token>/", views.invite_accept, name="invite_accept"),
]
