from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.tenancy import workspace_view


@workspace_view
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "analytics/overview.html", {})
