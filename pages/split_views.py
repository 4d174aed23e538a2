"""Variants of a step and its split tests: manage, weigh, remove, results, winner.

Owners, admins and editors change variants; viewers read (``@workspace_view`` refuses
their POSTs with 403). Every object is looked up through the request's workspace.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.tenancy import workspace_view
from analytics import experiments
from funnels.models import Step

from . import selectors, services
from .models import Page

MAX_RANGE_DAYS = 3 * 366
EARLIEST = date(2000, 1, 1)


def variant_rows(variants: list[Page]) -> list[dict[str, Any]]:
    """Each current variant with its normalised share of the served traffic."""
    shares = services.split_percentages([p.weight for p in variants])
    return [
        {
            "page": p,
            "share": share,
            "paused": p.weight == 0,
            "draft": p.published_version_id is None,
        }
        for p, share in zip(variants, shares, strict=True)
    ]


def _back(request: HttpRequest, page: Page) -> HttpResponse:
    """Back to where the form was: the editor or the variants page."""
    if request.POST.get("next") == "editor":
        return redirect("pages:editor", pk=page.pk)
    return redirect("pages:variants", step_pk=page.step_id)


@require_http_methods(["GET", "POST"])
@workspace_view
def variants(request: HttpRequest, step_pk: int) -> HttpResponse:
    """The step's variants with the weights form (POST saves the weights)."""
    step = selectors.step_get(workspace=request.workspace, pk=step_pk)
    pages = selectors.step_variants(step=step)
    errors: list[str] = []
    posted: dict[int, str] = {}
    if request.method == "POST":
        posted = {p.pk: request.POST.get(f"weight-{p.pk}", "").strip() for p in pages}
        try:
            services.variant_weights_set(
                step=step,
                weights={pk: v for pk, v in posted.items() if v != ""},
            )
        except ValidationError as exc:
            errors = exc.messages
        else:
            messages.success(request, "Weights saved. New visitors are split as shown.")
            return redirect("pages:variants", step_pk=step.pk)
    rows = variant_rows(pages)
    for row in rows:
        row["posted"] = posted.get(row["page"].pk)
    return render(
        request,
        "pages/variants.html",
        {
            "step": step,
            "funnel": step.funnel,
            "rows": rows,
            "errors": errors,
            "max_variants": services.MAX_VARIANTS,
            "running": selectors.split_test_running(step=step),
            "has_history": bool(selectors.split_tests_ended(step=step)),
        },
        status=422 if errors else 200,
    )


@require_POST
@workspace_view
def variant_add(request: HttpRequest, step_pk: int) -> HttpResponse:
    """Duplicate a variant (the POSTed ``source``, else the control) as a new one."""
    step = selectors.step_get(workspace=request.workspace, pk=step_pk)
    source_pk = request.POST.get("source", "")
    if source_pk.isdigit():
        source = selectors.page_get(workspace=request.workspace, pk=int(source_pk))
        if source.step_id != step.pk:
            source = services.page_for_step(step=step)
    else:
        source = services.page_for_step(step=step)
    try:
        page = services.variant_add(page=source)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        if request.POST.get("next") == "editor":
            return redirect("pages:editor", pk=source.pk)
        if request.POST.get("next") == "funnel":
            return redirect("funnels:detail", pk=step.funnel_id)
        return redirect("pages:variants", step_pk=step.pk)
    messages.success(
        request,
        f"{page.name} is a copy of {source.name}. Edit it, then publish the funnel "
        "to start the split test.",
    )
    return redirect("pages:editor", pk=page.pk)


@require_POST
@workspace_view
def variant_rename(request: HttpRequest, pk: int) -> HttpResponse:
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    try:
        services.variant_rename(page=page, name=request.POST.get("name", ""))
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"Renamed to {page.name}.")
    return _back(request, page)


@require_POST
@workspace_view
def variant_state(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Pause (weight 0, kept) or resume a variant."""
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    try:
        if action == "pause":
            services.variant_pause(page=page)
            messages.success(request, f"{page.name} is paused: no new visitors see it.")
        elif action == "resume":
            services.variant_resume(page=page)
            messages.success(request, f"{page.name} is back in the split.")
        else:
            messages.error(request, "Unknown action.")
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return _back(request, page)


@require_http_methods(["GET", "POST"])
@workspace_view
def variant_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then remove a variant (kept for the results, never served)."""
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    if request.method == "POST":
        try:
            services.variant_remove(page=page)
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
        else:
            messages.success(
                request,
                f"{page.name} was removed. Its numbers stay in the split-test results.",
            )
        return redirect("pages:variants", step_pk=page.step_id)
    return render(
        request,
        "pages/variant_confirm.html",
        {
            "page": page,
            "step": page.step,
            "funnel": page.step.funnel,
            "action": "remove",
            "running": selectors.split_test_running(step=page.step),
        },
    )


@require_http_methods(["GET", "POST"])
@workspace_view
def split_declare(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then make this variant the winner of its step's running test."""
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    step = page.step
    if request.method == "POST":
        try:
            services.split_test_declare_winner(
                step=step, winner=page, user=request.user
            )
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
        else:
            messages.success(
                request,
                f"{page.name} won. It is now the only page visitors see on "
                f"“{step.name}”; the test and its numbers are kept below.",
            )
        return redirect("pages:split_results", step_pk=step.pk)
    running = selectors.split_test_running(step=step)
    return render(
        request,
        "pages/variant_confirm.html",
        {
            "page": page,
            "step": step,
            "funnel": step.funnel,
            "action": "declare",
            "running": running,
            "others": [
                p for p in selectors.step_variants(step=step) if p.pk != page.pk
            ],
        },
    )


def _tz(step: Step) -> ZoneInfo:
    try:
        return ZoneInfo(step.workspace.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _parse_range(
    request: HttpRequest, tz: ZoneInfo
) -> tuple[datetime | None, datetime | None, str, dict[str, str]]:
    """The optional from/to dates; on bad input a message and no narrowing."""
    raw = {k: request.GET.get(k, "").strip()[:40] for k in ("from", "to")}
    parsed: dict[str, date | None] = {}
    for key, value in raw.items():
        if not value:
            parsed[key] = None
            continue
        try:
            parsed[key] = date.fromisoformat(value)
        except ValueError:
            return (
                None,
                None,
                f"“{value}” is not a date (use YYYY-MM-DD): showing the whole test.",
                raw,
            )
    start, end = parsed["from"], parsed["to"]
    latest = timezone.localdate() + timedelta(days=366)
    for d in (start, end):
        if d is not None and not (EARLIEST <= d <= latest):
            return (
                None,
                None,
                f"Dates must be between {EARLIEST:%b %-d, %Y} and "
                f"{latest:%b %-d, %Y}: showing the whole test.",
                raw,
            )
    if start and end and start > end:
        return (
            None,
            None,
            f"The start date ({start:%b %-d, %Y}) is after the end date "
            f"({end:%b %-d, %Y}): showing the whole test.",
            raw,
        )
    if start and end and (end - start).days + 1 > MAX_RANGE_DAYS:
        return (
            None,
            None,
            "Ranges are limited to three years: showing the whole test.",
            raw,
        )
    return (
        datetime.combine(start, time.min, tzinfo=tz) if start else None,
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz) if end else None,
        "",
        raw,
    )


@workspace_view
def split_results(request: HttpRequest, step_pk: int) -> HttpResponse:
    """Per-variant results of the step's running (or not yet started) test, and
    the history of past tests with their final numbers."""
    step = selectors.step_get(workspace=request.workspace, pk=step_pk)
    experiments.catch_up()
    running = selectors.split_test_running(step=step)
    start, end, range_error, raw = _parse_range(request, _tz(step))
    report = (
        selectors.split_test_report(step=step, test=running, start=start, end=end)
        if running
        else None
    )
    history = selectors.split_tests_ended(step=step)
    current = {p.pk for p in selectors.step_variants(step=step)}
    return render(
        request,
        "pages/split_results.html",
        {
            "step": step,
            "funnel": step.funnel,
            "running": running,
            "report": report,
            "rows": report.rows if report else [],
            "variant_count": len(current),
            "current": current,
            "history": history,
            "range_error": range_error,
            "range": raw,
            "narrowed": start is not None or end is not None,
            "currency": "USD",
            "variants_url": reverse("pages:variants", args=[step.pk]),
        },
    )
