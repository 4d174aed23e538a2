from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from accounts.forms import add_service_errors
from accounts.models import Role
from accounts.tenancy import workspace_view
from analytics import selectors as analytics_selectors
from funnels.models import Funnel, Step

from . import selectors, services
from .exports import csv_response, export_path
from .forms import BulkTagForm, LeadFilterForm, WebhookForm
from .models import (
    ExportStatus,
    Lead,
    LeadExport,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)


def _filters(request: HttpRequest) -> tuple[LeadFilterForm, selectors.LeadFilters]:
    form = LeadFilterForm(request.GET or None)
    return form, form.to_filters()


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
        "export": selectors.export_latest(
            workspace=request.workspace, user=request.user
        ),
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
            "enrollments": lead.enrollments.filter(workspace=request.workspace)
            .select_related("sequence")
            .order_by("-enrolled_at"),
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


# ------------------------------------------------------------ background exports
def _export_or_404(request: HttpRequest, pk: int) -> LeadExport:
    return get_object_or_404(LeadExport, workspace=request.workspace, pk=pk)


def _export_panel(request: HttpRequest, export: LeadExport) -> HttpResponse:
    return render(request, "leads/_export_panel.html", {"export": export})


@workspace_view
@require_POST
def lead_export_create(request: HttpRequest) -> HttpResponse:
    """Queue a CSV of the list as currently filtered; the panel shows its progress."""
    keys = [k for k in LeadFilterForm.base_fields if k != "cursor"]
    if any(k in request.POST for k in keys):  # htmx sends the filters as they are now
        query = urlencode({k: v for k in keys if (v := request.POST.get(k))})
    else:  # no JavaScript: the filters the page was rendered with
        query = request.POST.get("query", "")
    try:
        export = services.lead_export_start(
            workspace=request.workspace, user=request.user, query=query
        )
    except ValidationError as exc:
        if request.htmx:
            return render(
                request, "leads/_export_panel.html", {"error": " ".join(exc.messages)}
            )
        messages.error(request, " ".join(exc.messages))
        return redirect(f"{reverse('leads:list')}?{query}")
    if request.htmx:
        return _export_panel(request, export)
    return redirect("leads:export_status", pk=export.pk)


@workspace_view
def lead_export_status(request: HttpRequest, pk: int) -> HttpResponse:
    export = _export_or_404(request, pk)
    if request.htmx:
        return _export_panel(request, export)
    return render(request, "leads/lead_export.html", {"export": export})


@workspace_view
def lead_export_download(request: HttpRequest, pk: int) -> FileResponse:
    export = _export_or_404(request, pk)
    path = export_path(export) if export.file_name else None
    if export.status != ExportStatus.READY or export.expired_at or not path:
        raise Http404("This export is not ready or has expired.")
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise Http404("This export file is gone. Please export again.") from None
    return FileResponse(
        handle,
        as_attachment=True,
        filename=path.name,
        content_type="text/csv; charset=utf-8",
    )
