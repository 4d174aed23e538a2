"""Workspace settings → Domains: connect a custom domain to a funnel."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Role
from accounts.tenancy import workspace_view

from . import selectors, services
from .forms import DomainForm


def _dns_target(request: HttpRequest) -> str:
    """What a custom domain's CNAME points at: the workspace's own public host,
    which the wildcard record of PUBLIC_DOMAIN already sends here."""
    return request.workspace.public_host.split(":", 1)[0]


@workspace_view(write_role=Role.ADMIN)
def domain_list(request: HttpRequest) -> HttpResponse:
    workspace = request.workspace
    form = DomainForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        try:
            domain = services.domain_add(
                workspace=workspace,
                host=form.cleaned_data["host"],
                funnel=form.cleaned_data["funnel"],
            )
        except ValidationError as exc:
            form.add_error("host", exc.messages)
        else:
            messages.success(
                request,
                f"{domain.host} now serves {domain.funnel.name}. Create its DNS "
                "record to go live.",
            )
            return redirect("domains:list")
    return render(
        request,
        "pages/domains.html",
        {
            "form": form,
            "domains": selectors.domains_for(workspace=workspace),
            "dns_target": _dns_target(request),
            "tab": "domains",
        },
        status=422 if form.errors else 200,
    )


@workspace_view(write_role=Role.ADMIN)
@require_POST
def domain_delete(request: HttpRequest, pk: int) -> HttpResponse:
    domain = selectors.domain_get(workspace=request.workspace, pk=pk)
    host = domain.host
    services.domain_delete(domain=domain)
    messages.success(request, f"{host} was disconnected.")
    return redirect("domains:list")


@require_GET
def domain_check(request: HttpRequest) -> HttpResponse:
    """Caddy's on-demand TLS ``ask``: 200 for a public host this app serves.

    A workspace subdomain or a connected custom domain gets a certificate; any other
    name a 404, so nobody can make the proxy fetch certificates for random names.
    """
    from .public.hosts import public_domain_name

    raw = request.GET.get("domain", "")
    try:
        host = services.domain_normalise(raw)
    except ValidationError:
        host = ""
    # An old workspace slug gets one too: its redirect must work over HTTPS.
    known = bool(host) and (
        selectors.public_host_lookup(host=host, public_domain=public_domain_name())
        is not None
    )
    response = HttpResponse(
        "ok" if known else "unknown domain",
        status=200 if known else 404,
        content_type="text/plain; charset=utf-8",
    )
    response["Cache-Control"] = "no-store"
    return response
