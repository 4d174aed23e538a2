from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.forms import add_service_errors
from accounts.models import Role
from accounts.tenancy import workspace_view
from analytics import selectors as analytics_selectors
from funnels.models import Funnel, Step

from . import selectors, services
from .exports import csv_response
from .forms import BulkTagForm, LeadFilterForm, WebhookForm
from .models import Lead, Webhook, WebhookDelivery, WebhookEvent


def _filters(request: HttpRequest) -> tuple[LeadFilterForm, selectors.LeadFilters]:
    form = LeadFilterForm(request.GET or None)
    filters = selectors.LeadFilters()
    if form.is_valid():
        d = form.cleaned_data
        filters = selectors.LeadFilters(
            q=d["q"] or "",
            funnel_id=d["funnel"],
            step_id=d["step"],
            tag_id=d["tag"],
            date_from=d["date_from"],
            date_to=d["date_to"],
            source=d["source"] or "",
            sort=d["sort"] or "newest",
        )
    return form, filters


@workspace_view
def lead_list(request: HttpRequest) -> HttpResponse:
    form, filters = _filters(request)
    cursor = (
        form.cleaned_data.get("cursor", "") if form.is_bound and form.is_valid() else ""
    )
    page = selectors.lead_page(
        workspace=request.workspace, filters=filters, cursor=cursor or ""
    )
    params = request.GET.copy()
    params.pop("cursor", None)
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "query": params.urlencode(),
        "funnels": Funnel.objects.for_workspace(request.workspace).order_by("name"),
        "steps": Step.objects.filter(workspace=request.workspace)
        .select_related("funnel")
        .order_by("funnel__name", "position"),
        "tags": selectors.tags_for(workspace=request.workspace),
        "sources": selectors.lead_sources(workspace=request.workspace),
        "is_first_page": not cursor,
    }
    template = "leads/lead_list.html"
    if request.htmx and request.htmx.target == "lead-results":
        template += "#lead-results"
    return render(request, template, context)


@workspace_view
def lead_export_csv(request: HttpRequest) -> StreamingHttpResponse:
    _form, filters = _filters(request)
    return csv_response(
        header=[label for _, label in selectors.CSV_COLUMNS],
        rows=selectors.lead_export_rows(workspace=request.workspace, filters=filters),
        name="leads",
    )


@workspace_view
@require_POST
def lead_bulk_tag(request: HttpRequest) -> HttpResponse:
    ids = [int(i) for i in request.POST.getlist("leads") if i.isdigit()]
    form = BulkTagForm(request.POST, lead_ids=ids)
    if not form.is_valid() or not ids:
        messages.error(request, "Select some leads and type a tag name.")
    else:
        try:
            count = services.leads_tag(
                workspace=request.workspace,
                lead_ids=form.cleaned_data["leads"],
                tag_name=form.cleaned_data["tag"],
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request,
                f"Tagged {count} lead{'s' if count != 1 else ''} "
                f"“{form.cleaned_data['tag']}”.",
            )
    back = request.POST.get("next", "")
    return redirect(back if back.startswith("/leads/") else "leads:list")


def _lead_or_404(request: HttpRequest, pk: int) -> Lead:
    lead = selectors.lead_get(workspace=request.workspace, pk=pk)
    if lead is None:
        raise Http404("No such lead")
    return lead


@workspace_view
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _lead_or_404(request, pk)
    journey = analytics_selectors.lead_journey(
        workspace=request.workspace, lead_id=lead.pk, limit=500
    )
    steps = {
        s.pk: s
        for s in Step.objects.filter(
            workspace=request.workspace, pk__in={e.step_id for e in journey}
        ).select_related("funnel")
    }
    return render(
        request,
        "leads/lead_detail.html",
        {
            "lead": lead,
            "journey": [(event, steps.get(event.step_id)) for event in journey],
            "submissions": selectors.lead_submissions(lead=lead),
            "orders": selectors.orders_for_lead(lead=lead),
        },
    )


@workspace_view
def lead_export_json(request: HttpRequest, pk: int) -> JsonResponse:
    lead = _lead_or_404(request, pk)
    response = JsonResponse(
        services.lead_export(lead=lead), json_dumps_params={"indent": 2}
    )
    response["Content-Disposition"] = (
        f'attachment; filename="lead-{lead.public_id}.json"'
    )
    return response


@workspace_view
def lead_erase(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _lead_or_404(request, pk)
    if request.method == "POST":
        if lead.erased_at is None:
            services.lead_erase(lead=lead)
        messages.success(request, "The lead’s personal data was erased.")
        return redirect("leads:detail", pk=lead.pk)
    return render(request, "leads/lead_erase.html", {"lead": lead})


@workspace_view(write_role=Role.ADMIN)
def webhook_list(request: HttpRequest) -> HttpResponse:
    form = WebhookForm(request.POST or None, initial={"events": WebhookEvent.values})
    if request.method == "POST" and form.is_valid():
        try:
            hook = services.webhook_create(
                workspace=request.workspace,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Webhook to {hook.url} added.")
            return redirect("leads:webhooks")
    return render(
        request,
        "leads/webhooks.html",
        {
            "form": form,
            "webhooks": selectors.webhooks_for(workspace=request.workspace),
            "deliveries": selectors.deliveries_for(workspace=request.workspace),
            "tab": "webhooks",
        },
        status=422 if form.errors else 200,
    )


@workspace_view(write_role=Role.ADMIN)
@require_POST
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    hook = get_object_or_404(Webhook, pk=pk, workspace=request.workspace)
    services.webhook_delete(webhook=hook)
    messages.success(request, "Webhook removed.")
    return redirect("leads:webhooks")


@workspace_view(write_role=Role.ADMIN)
@require_POST
def webhook_resend(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery, pk=pk, workspace=request.workspace)
    services.webhook_delivery_resend(delivery=delivery)
    messages.success(request, f"{delivery.event} queued again.")
    return redirect("leads:webhooks")
