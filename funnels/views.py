from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.tenancy import workspace_view

from . import selectors, services
from .forms import (
    FunnelCreateForm,
    FunnelDeleteForm,
    FunnelUpdateForm,
    StepCreateForm,
    StepReorderForm,
    StepUpdateForm,
    add_service_errors,
)
from .models import BRANCHING_KINDS, Funnel, Stage, StepKind

DETAIL = "funnels/funnel_detail.html"


@workspace_view
def home(request: HttpRequest) -> HttpResponse:
    return redirect("funnels:list")


@workspace_view
def funnel_list(request: HttpRequest) -> HttpResponse:
    archived = request.GET.get("archived") == "1"
    funnels = selectors.funnel_list(workspace=request.workspace, archived=archived)
    return render(
        request,
        "funnels/funnel_list.html",
        {
            "funnels": funnels,
            "archived": archived,
            "counts": selectors.funnel_counts(workspace=request.workspace),
        },
    )


@workspace_view
def funnel_create(request: HttpRequest) -> HttpResponse:
    form = FunnelCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            funnel = services.funnel_create(
                workspace=request.workspace, **form.cleaned_data
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"“{funnel.name}” is ready. Add its steps.")
            return redirect("funnels:detail", pk=funnel.pk)
    return render(request, "funnels/funnel_create.html", {"form": form})


def _detail_context(
    request: HttpRequest, funnel: Funnel, **extra: object
) -> dict[str, object]:
    steps = selectors.step_list(funnel=funnel)
    return {
        "funnel": funnel,
        "steps": steps,
        "graph": selectors.funnel_graph(steps=steps),
        "kinds": StepKind.choices,
        "stages": Stage.choices,
        "branching_kinds": BRANCHING_KINDS,
        "settings_form": extra.pop("settings_form", None)
        or FunnelUpdateForm(initial={"name": funnel.name, "slug": funnel.slug}),
        **extra,
    }


def _render_steps(
    request: HttpRequest, funnel: Funnel, status: int = 200, **extra: object
) -> HttpResponse:
    """The steps region as a fragment for htmx, the whole page otherwise."""
    template = f"{DETAIL}#steps" if request.htmx else DETAIL
    return render(
        request, template, _detail_context(request, funnel, **extra), status=status
    )


@workspace_view
def funnel_detail(request: HttpRequest, pk: int) -> HttpResponse:
    funnel = selectors.funnel_get(workspace=request.workspace, pk=pk)
    return render(request, DETAIL, _detail_context(request, funnel))


@workspace_view
@require_POST
def funnel_update(request: HttpRequest, pk: int) -> HttpResponse:
    funnel = selectors.funnel_get(workspace=request.workspace, pk=pk)
    form = FunnelUpdateForm(request.POST)
    if form.is_valid():
        try:
            # Name and URL change together or not at all.
            with transaction.atomic():
                services.funnel_rename(funnel=funnel, name=form.cleaned_data["name"])
                if form.cleaned_data["slug"] != funnel.slug:
                    services.funnel_set_slug(
                        funnel=funnel, slug=form.cleaned_data["slug"]
                    )
        except ValidationError as exc:
            add_service_errors(form, exc)
    if form.errors:
        funnel.refresh_from_db()
        status = 422 if request.htmx else 200
        template = f"{DETAIL}#settings" if request.htmx else DETAIL
        return render(
            request,
            template,
            _detail_context(request, funnel, settings_form=form),
            status=status,
        )
    if request.htmx:
        return render(
            request,
            f"{DETAIL}#settings",
            _detail_context(request, funnel, settings_saved=True),
        )
    messages.success(request, "Funnel settings saved.")
    return redirect("funnels:detail", pk=funnel.pk)


@workspace_view
@require_POST
def funnel_duplicate(request: HttpRequest, pk: int) -> HttpResponse:
    funnel = selectors.funnel_get(workspace=request.workspace, pk=pk)
    copy, _ = services.funnel_duplicate(funnel=funnel)
    messages.success(request, f"Duplicated as “{copy.name}”.")
    url = reverse("funnels:detail", args=[copy.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@workspace_view
@require_POST
def funnel_archive(request: HttpRequest, pk: int) -> HttpResponse:
    funnel = selectors.funnel_get(workspace=request.workspace, pk=pk)
    services.funnel_archive(funnel=funnel)
    messages.success(request, f"“{funnel.name}” archived.")
    return redirect("funnels:list")


@workspace_view
@require_POST
def funnel_unarchive(request: HttpRequest, pk: int) -> HttpResponse:
    funnel = selectors.funnel_get(workspace=request.workspace, pk=pk)
    services.funnel_unarchive(funnel=funnel)
    messages.success(request, f"“{funnel.name}” restored.")
    return redirect("funnels:detail", pk=funnel.pk)


@workspace_view
def funnel_delete(request: HttpRequest, pk: int) -> HttpResponse:
    funnel = selectors.funnel_get(workspace=request.workspace, pk=pk)
    form = FunnelDeleteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.funnel_delete(
                funnel=funnel, confirm_name=form.cleaned_data["confirm_name"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"“{funnel.name}” deleted.")
            return redirect("funnels:list")
    return render(
        request,
        "funnels/funnel_delete.html",
        {"funnel": funnel, "form": form, "step_count": funnel.steps.count()},
    )


# -- steps ------------------------------------------------------------------------


@workspace_view
@require_POST
def step_create(request: HttpRequest, pk: int) -> HttpResponse:
    funnel = selectors.funnel_get(workspace=request.workspace, pk=pk)
    form = StepCreateForm(request.POST)
    if not form.is_valid():
        return _render_steps(request, funnel, 422, error="Pick a kind of step.")
    try:
        step = services.step_create(funnel=funnel, **form.cleaned_data)
    except ValidationError as exc:
        return _render_steps(request, funnel, 422, error=" ".join(exc.messages))
    if request.htmx:
        return _render_steps(request, funnel, flash=f"Added “{step.name}”.")
    messages.success(request, f"Added “{step.name}”.")
    return redirect("funnels:detail", pk=funnel.pk)


@workspace_view
@require_POST
def step_update(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    funnel = selectors.funnel_get(workspace=request.workspace, pk=pk)
    step = selectors.step_get(workspace=request.workspace, funnel=funnel, pk=step_pk)
    form = StepUpdateForm(request.POST)
    if not form.is_valid():
        error = (
            "Pick a journey stage from the list."
            if list(form.errors) == ["stage"]
            else "Give the step a name and a URL."
        )
        return _render_steps(request, funnel, 422, error=error, open_step=step.pk)
    data = form.cleaned_data
    changes: dict[str, object] = {"name": data["name"], "slug": data["slug"]}
    if "stage" in request.POST:
        changes["stage"] = data["stage"]
    if step.kind in BRANCHING_KINDS:
        for field in ("accept_target", "decline_target"):
            target_pk = data[field]
            if target_pk is None:
                changes[field] = None
                continue
            target = funnel.steps.filter(pk=target_pk).first()
            if target is None:
                return _render_steps(
                    request,
                    funnel,
                    422,
                    error="Pick a step of this funnel.",
                    open_step=step.pk,
                )
            changes[field] = target
    try:
        services.step_update(step=step, **changes)  # type: ignore[arg-type]
    except ValidationError as exc:
        return _render_steps(
            request, funnel, 422, error=" ".join(exc.messages), open_step=step.pk
        )
    if request.htmx:
        return _render_steps(request, funnel, flash=f"Saved “{step.name}”.")
    messages.success(request, f"Saved “{step.name}”.")
    return redirect("funnels:detail", pk=funnel.pk)


@workspace_view
@require_POST
def step_move(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    funnel = selectors.funnel_get(workspace=request.workspace, pk=pk)
    step = selectors.step_get(workspace=request.workspace, funnel=funnel, pk=step_pk)
    direction = request.POST.get("direction", "")
    try:
        services.step_move(step=step, direction=direction)
    except ValidationError as exc:
        return _render_steps(request, funnel, 400, error=" ".join(exc.messages))
    if request.htmx:
        return _render_steps(
            request,
            funnel,
            focus=f"move-{direction}-{step.pk}",
            flash=f"Moved “{step.name}” {direction}.",
        )
    return redirect("funnels:detail", pk=funnel.pk)


@workspace_view
@require_POST
def step_reorder(request: HttpRequest, pk: int) -> HttpResponse:
    funnel = selectors.funnel_get(workspace=request.workspace, pk=pk)
    form = StepReorderForm(request.POST)
    if not form.is_valid():
        return _render_steps(request, funnel, 400, error="That order is not valid.")
    try:
        services.step_reorder(funnel=funnel, step_ids=form.cleaned_data["order"])
    except ValidationError as exc:
        return _render_steps(request, funnel, 400, error=" ".join(exc.messages))
    if request.htmx:
        return _render_steps(request, funnel, flash="Order saved.")
    return redirect("funnels:detail", pk=funnel.pk)


@workspace_view
@require_POST
def step_delete(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    funnel = selectors.funnel_get(workspace=request.workspace, pk=pk)
    step = selectors.step_get(workspace=request.workspace, funnel=funnel, pk=step_pk)
    try:
        services.step_delete(step=step)
    except ValidationError as exc:
        if request.htmx:
            return _render_steps(request, funnel, 409, error=" ".join(exc.messages))
        messages.error(request, " ".join(exc.messages))
        return redirect("funnels:detail", pk=funnel.pk)
    if request.htmx:
        return _render_steps(request, funnel, flash=f"Deleted “{step.name}”.")
    messages.success(request, f"Deleted “{step.name}”.")
    return redirect("funnels:detail", pk=funnel.pk)
