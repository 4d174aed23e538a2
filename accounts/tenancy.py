"""One decorator resolves the current workspace and the member's role per request.

Views decorated with ``@workspace_view`` get ``request.workspace`` and
``request.membership``. Unsafe methods (POST, PUT, PATCH, DELETE) need at least the
``write_role`` (editor by default), so a viewer gets 403 on every write. Objects that
belong to another workspace must be looked up through ``request.workspace`` so that
"not yours" and "not found" are the same 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from .models import Role
from .selectors import membership_for

SESSION_KEY = "workspace_id"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

View = Callable[..., HttpResponse]


def workspace_view(
    view: View | None = None,
    *,
    read_role: str = Role.VIEWER,
    write_role: str = Role.EDITOR,
) -> Any:
    def decorator(func: View) -> View:
        @wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = membership_for(
                user=request.user, workspace_id=request.session.get(SESSION_KEY)
            )
            if membership is None:
                return redirect("accounts:workspace_create")
            if request.session.get(SESSION_KEY) != membership.workspace_id:
                request.session[SESSION_KEY] = membership.workspace_id
            needed = read_role if request.method in SAFE_METHODS else write_role
            if not membership.has_role(needed):
                raise PermissionDenied(
                    f"Your role ({membership.get_role_display()}) cannot do this."
                )
            request.membership = membership
            request.workspace = membership.workspace
            return func(request, *args, **kwargs)

        wrapper.workspace_scoped = True  # type: ignore[attr-defined]
        return wrapper

    if view is not None:
        return decorator(view)
    return decorator


def set_current_workspace(request: HttpRequest, workspace_id: int) -> None:
    request.session[SESSION_KEY] = workspace_id
