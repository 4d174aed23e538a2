from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.tenancy import workspace_view

from . import selectors


@workspace_view
def funnel_list(request: HttpRequest) -> HttpResponse:
    funnels = selectors.funnel_list(workspace=request.workspace)
    return render(request, "funnels/funnel_list.html", {"funnels": funnels})
