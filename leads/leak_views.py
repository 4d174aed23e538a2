"""Leaks: the leads behind "dropped here" on the journey map.

One cohort, three ways to act on it: read it (source, when they dropped), export it
as CSV, tag every lead in it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.tenancy import workspace_view
from analytics import journeys
from analytics.forms import range_filters
from analytics.reports import ReportFilters
from funnels.models import Funnel, Step

from . import selectors, services
from .exports import csv_response
from .forms import CohortSequenceForm
from .models import SequenceTrigger
from .sequences import selectors as sequence_selectors
from .sequences import services as sequence_services


@dataclass
class Leak:
    funnel: Funnel
    filters: ReportFilters
    step: Step | None
    path: str
    variant: int | None
    title: str
    notes: list[str]
    query: str


def _leak(request: HttpRequest, data: QueryDict) -> Leak:
    """The cohort the query names; 404 for another workspace's funnel or a step or
    variant not in it, as for any object that is not yours."""
    raw = data.get("funnel", "")
    funnel = (
        Funnel.objects.filter(workspace=request.workspace, pk=int(raw)).first()
        if raw.isdigit()
        else None
    )
    if funnel is None:
        raise Http404("No such funnel")
    _form, filters, notes = range_filters(data)
    steps = list(Step.objects.filter(funnel=funnel).order_by("position", "id"))
    step = None
    path = data.get("path", "")
    if path:
        if not journeys.path_key_valid(path):
            raise Http404("No such path")
        names = {s.pk: s.name for s in steps}
        elements, truncated = journeys.path_elements(path)
        label = journeys.path_label(
            journeys.JourneyPath(path, elements, truncated, 0, 0, 0), names
        )
        title = f"Took the path {label}"
    else:
        raw = data.get("step", "")
        step = next((s for s in steps if raw.isdigit() and s.pk == int(raw)), None)
        if step is None:
            raise Http404("No such step")
        title = f"Dropped at {step.name}"
    variant = None
    raw = data.get("variant", "")
    if raw:
        if not (
            raw.isdigit()
            and Step.objects.filter(funnel=funnel, pages__id=int(raw)).exists()
        ):
            raise Http404("No such variant")
        variant = int(raw)
    keep = (
        "funnel",
        "step",
        "path",
        "variant",
        "range",
        "date_from",
        "date_to",
        "source",
        "medium",
        "campaign",
    )
    query = QueryDict(mutable=True)
    for key in keep:
        if data.get(key):
            query[key] = data[key]
    return Leak(funnel, filters, step, path, variant, title, notes, query.urlencode())


def _leads(request: HttpRequest, leak: Leak, limit: int | None = None):
    return selectors.dropped_leads(
        workspace=request.workspace,
        funnel=leak.funnel,
        filters=leak.filters,
        step_id=leak.step.pk if leak.step else None,
        path=leak.path or None,
        variant=leak.variant,
        **({"limit": limit} if limit else {}),
    )


@workspace_view
def dropped(request: HttpRequest) -> HttpResponse:
    leak = _leak(request, request.GET)
    rows = _leads(request, leak)
    return render(
        request,
        "leads/dropped.html",
        {
            "leak": leak,
            "rows": rows,
            "limit": selectors.DROPPED_LIMIT,
            "back": reverse("analytics:journey", args=[leak.funnel.pk]),
            "sequence_form": CohortSequenceForm(workspace=request.workspace),
            "has_sequences": bool(
                sequence_selectors.sequences_for(workspace=request.workspace)
            ),
        },
    )


@workspace_view
def dropped_csv(request: HttpRequest) -> HttpResponse:
    leak = _leak(request, request.GET)
    rows = (
        (
            r.lead.email,
            r.lead.first_name,
            r.lead.last_name,
            r.source,
            r.medium,
            r.campaign,
            r.dropped_at,
        )
        for r in _leads(request, leak, limit=None)
    )
    # csv_response defuses cells that would start a formula (config.csvsafe).
    return csv_response(
        header=[
            "E-mail",
            "First name",
            "Last name",
            "Source",
            "Medium",
            "Campaign",
            "Dropped at",
        ],
        rows=rows,
        name="dropped",
    )


@workspace_view
@require_POST
def dropped_tag(request: HttpRequest) -> HttpResponse:
    """Tag every lead of the cohort (editors and up: workspace_view refuses a
    viewer's POST)."""
    leak = _leak(request, request.POST)
    ids = [r.lead.pk for r in _leads(request, leak)]
    try:
        count = services.leads_tag(
            workspace=request.workspace,
            lead_ids=ids,
            tag_name=request.POST.get("tag", ""),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        tag = " ".join(request.POST.get("tag", "").split())
        plural = "s" if count != 1 else ""
        messages.success(request, f"Tagged {count} lead{plural} “{tag}”.")
    return redirect(f"{reverse('leads:dropped')}?{leak.query}")


@workspace_view
@require_POST
def dropped_sequence(request: HttpRequest) -> HttpResponse:
    """Start a sequence for every lead of the cohort (editors and up). Leads
    already in it, unsubscribed or erased are left out."""
    leak = _leak(request, request.POST)
    form = CohortSequenceForm(request.POST, workspace=request.workspace)
    if not form.is_valid():
        messages.error(request, "Choose one of your sequences.")
        return redirect(f"{reverse('leads:dropped')}?{leak.query}")
    sequence = form.cleaned_data["sequence"]
    ids = [r.lead.pk for r in _leads(request, leak)]
    label = leak.title[:1].lower() + leak.title[1:]
    count = sequence_services.sequence_enroll(
        sequence=sequence,
        lead_ids=ids,
        source=SequenceTrigger.MANUAL,
        source_label=label,
    )
    plural = "s" if count != 1 else ""
    left = len(ids) - count
    note = f" ({left} already in it or unsubscribed)" if left else ""
    messages.success(
        request, f"Started “{sequence.name}” for {count} lead{plural}{note}."
    )
    return redirect("leads:sequence_detail", sequence.pk)
