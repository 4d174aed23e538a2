"""Sequences in the app: list, build (settings and steps), and what each achieved.

Every object is looked up through ``request.workspace``: another workspace's
sequence or step is the same 404 as one that does not exist.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.tenancy import workspace_view
from funnels.forms import add_service_errors

from .forms import SequenceForm, SequenceStepForm
from .models import Sequence, SequenceSend, SequenceStep
from .sequences import selectors, services


def _sequence(request: HttpRequest, pk: int) -> Sequence:
    sequence = selectors.sequence_get(workspace=request.workspace, pk=pk)
    if sequence is None:
        raise Http404("No such sequence")
    return sequence


@workspace_view
def sequence_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "leads/sequence_list.html",
        {"sequences": selectors.sequences_for(workspace=request.workspace)},
    )


def _save(request: HttpRequest, form: SequenceForm, sequence: Sequence | None):
    d = form.cleaned_data
    return services.sequence_save(
        workspace=request.workspace,
        name=d["name"],
        funnel=d["funnel"],
        trigger=d["trigger"],
        trigger_step=d["trigger_step"],
        track_opens=d["track_opens"],
        is_active=d["is_active"],
        sequence=sequence,
    )


@workspace_view
def sequence_create(request: HttpRequest) -> HttpResponse:
    initial = {"is_active": True}
    if request.GET.get("funnel", "").isdigit():
        initial["funnel"] = int(request.GET["funnel"])
    form = SequenceForm(
        request.POST or None, workspace=request.workspace, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        try:
            sequence = _save(request, form, None)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request, f"Sequence “{sequence.name}” created: add its e-mails."
            )
            return redirect("leads:sequence_detail", sequence.pk)
    return render(
        request,
        "leads/sequence_form.html",
        {"form": form, "sequence": None},
        status=422 if form.errors else 200,
    )


@workspace_view
def sequence_edit(request: HttpRequest, pk: int) -> HttpResponse:
    sequence = _sequence(request, pk)
    form = SequenceForm(
        request.POST or None,
        workspace=request.workspace,
        initial={
            "name": sequence.name,
            "funnel": sequence.funnel_id,
            "trigger": sequence.trigger,
            "trigger_step": sequence.trigger_step_id,
            "track_opens": sequence.track_opens,
            "is_active": sequence.is_active,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            _save(request, form, sequence)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Sequence saved.")
            return redirect("leads:sequence_detail", sequence.pk)
    return render(
        request,
        "leads/sequence_form.html",
        {"form": form, "sequence": sequence},
        status=422 if form.errors else 200,
    )


def _detail(
    request: HttpRequest, sequence: Sequence, step_form: SequenceStepForm
) -> HttpResponse:
    report = selectors.sequence_report(workspace=request.workspace, sequence=sequence)
    return render(
        request,
        "leads/sequence_detail.html",
        {
            "sequence": sequence,
            "report": report,
            "people": selectors.sequence_people(
                workspace=request.workspace, sequence=sequence, report=report
            ),
            "people_limit": selectors.PEOPLE_LIMIT,
            "step_form": step_form,
            "single_source": report.sources[0][0] if len(report.sources) == 1 else "",
        },
        status=422 if step_form.errors else 200,
    )


@workspace_view
def sequence_detail(request: HttpRequest, pk: int) -> HttpResponse:
    sequence = _sequence(request, pk)
    return _detail(request, sequence, SequenceStepForm(workspace=request.workspace))


@workspace_view
@require_POST
def sequence_step_add(request: HttpRequest, pk: int) -> HttpResponse:
    sequence = _sequence(request, pk)
    form = SequenceStepForm(request.POST, workspace=request.workspace)
    if _step_save(form, sequence):
        messages.success(request, "E-mail added.")
        return redirect("leads:sequence_detail", sequence.pk)
    return _detail(request, sequence, form)


def _step_save(
    form: SequenceStepForm, sequence: Sequence, step: SequenceStep | None = None
) -> bool:
    """Save a valid form's e-mail (a new one without ``step``); False with the
    errors on the form otherwise."""
    if not form.is_valid():
        return False
    try:
        services.sequence_step_save(
            sequence=sequence,
            step=step,
            subject=form.cleaned_data["subject"],
            body=form.cleaned_data["body"],
            delay_minutes=form.delay_minutes,
            unless_bought=form.cleaned_data["unless_bought"],
        )
    except ValidationError as exc:
        add_service_errors(form, exc)
        return False
    return True


def _step(request: HttpRequest, pk: int, step_pk: int) -> tuple[Sequence, SequenceStep]:
    sequence = _sequence(request, pk)
    step = get_object_or_404(
        SequenceStep, pk=step_pk, sequence=sequence, workspace=request.workspace
    )
    return sequence, step


@workspace_view
def sequence_step_edit(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    sequence, step = _step(request, pk, step_pk)
    form = SequenceStepForm(
        request.POST or None,
        workspace=request.workspace,
        initial=SequenceStepForm.initial_for(step),
    )
    if request.method == "POST" and _step_save(form, sequence, step):
        messages.success(request, "E-mail saved.")
        return redirect("leads:sequence_detail", sequence.pk)
    return render(
        request,
        "leads/sequence_step_form.html",
        {"form": form, "sequence": sequence, "step": step},
        status=422 if form.errors else 200,
    )


@workspace_view
@require_POST
def sequence_step_delete(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    sequence, step = _step(request, pk, step_pk)
    if SequenceSend.objects.filter(step=step).exists():
        messages.error(
            request, "This e-mail has gone out already: edit it instead of removing it."
        )
    else:
        step.delete()
        messages.success(request, "E-mail removed.")
    return redirect("leads:sequence_detail", sequence.pk)
