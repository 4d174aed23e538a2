from __future__ import annotations

from django.http import HttpRequest

from .selectors import memberships_for_user


def workspace(request: HttpRequest) -> dict:
    """Expose the current workspace and the switcher's list to every template."""
    current = getattr(request, "workspace", None)
    if current is None or not request.user.is_authenticated:
        return {"current_workspace": current}
    return {
        "current_workspace": current,
        "current_membership": getattr(request, "membership", None),
        "my_memberships": lambda: list(memberships_for_user(user=request.user)),
    }
