from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import Workspace
from analytics import experiments
from funnels.models import Funnel, Step

from .models import FunnelTheme, ImageAsset, Page, PageVersion, SplitTest

TEMPLATES_DIR = Path(__file__).resolve().parent / "funnel_templates"


def page_get(*, workspace: Workspace, pk: int) -> Page:
    """404 for a page of another workspace, same as an unknown one."""
    return get_object_or_404(
        Page.objects.select_related("step__funnel"), workspace=workspace, pk=pk
    )


def step_get(*, workspace: Workspace, pk: int) -> Step:
    return get_object_or_404(
        Step.objects.select_related("funnel"), workspace=workspace, pk=pk
    )


def funnel_get(*, workspace: Workspace, pk: int) -> Funnel:
    return get_object_or_404(Funnel, workspace=workspace, pk=pk)


def theme_for(*, funnel: Funnel) -> FunnelTheme:
    theme, _ = FunnelTheme.objects.get_or_create(
        funnel=funnel, defaults={"workspace_id": funnel.workspace_id}
    )
    return theme


def images_for(*, workspace_id: int, ids: set[int]) -> dict[int, ImageAsset]:
    if not ids:
        return {}
    return {
        img.pk: img
        for img in ImageAsset.objects.filter(workspace_id=workspace_id, pk__in=ids)
    }


def page_versions(*, page: Page) -> QuerySet[PageVersion]:
    return page.versions.select_related("published_by").defer("html", "document")


def step_variants(*, step: Step) -> list[Page]:
    """The step's current (not removed) variants, oldest first: A is the control."""
    return list(
        Page.objects.filter(step=step, archived_at__isnull=True)
        .select_related("published_version")
        .defer("published_version__html", "published_version__document")
        .order_by("id")
    )


def split_test_running(*, step: Step) -> SplitTest | None:
    return SplitTest.objects.filter(step=step, ended_at__isnull=True).first()


def split_tests_ended(*, step: Step) -> list[SplitTest]:
    return list(
        SplitTest.objects.filter(step=step, ended_at__isnull=False)
        .select_related("winner", "ended_by")
        .order_by("-ended_at", "-id")
    )


def split_test_variants(*, step: Step, test: SplitTest | None) -> list[Page]:
    """Variants to report: the current ones, then those removed during the test."""
    pages = Page.objects.filter(step=step).order_by("id")
    if test is None:
        return list(pages.filter(archived_at__isnull=True))
    return [
        p
        for p in pages
        if p.archived_at is None
        or (
            p.archived_at >= test.started_at
            and (test.ended_at is None or p.archived_at <= test.ended_at)
        )
    ]


def split_test_report(
    *,
    step: Step,
    test: SplitTest | None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> experiments.ExperimentReport:
    """Results of the step's variants over the test (narrowed to start/end)."""
    variants = split_test_variants(step=step, test=test)
    window_start = (
        test.started_at
        if test
        else min((p.created_at for p in variants), default=timezone.now())
    )
    window_end = (test.ended_at if test and test.ended_at else None) or (
        timezone.now() + timedelta(seconds=1)
    )
    if start is not None:
        window_start = max(window_start, start)
    if end is not None:
        window_end = min(window_end, end)
    return experiments.experiment_report(
        step=step,
        variants=[
            experiments.VariantSpec(
                page_id=p.pk,
                label=p.name,
                weight=p.weight,
                removed=p.archived_at is not None,
            )
            for p in variants
        ],
        start=window_start,
        end=max(window_end, window_start),
    )


def funnel_steps(*, funnel: Funnel) -> list[Step]:
    return list(funnel.steps.order_by("position", "id"))


@cache
def funnel_templates() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(TEMPLATES_DIR.glob("*.json")):
        data = json.loads(path.read_text())
        out[data["key"]] = data
    return dict(sorted(out.items(), key=lambda kv: kv[1].get("order", 99)))


def funnel_template(*, key: str) -> dict[str, Any] | None:
    return funnel_templates().get(key)


def published_page(*, funnel_slug: str, step_slug: str | None) -> PageVersion | None:
    """The live version of a published funnel's step (first step when none)."""
    funnel = Funnel.objects.filter(
        slug=funnel_slug, published_at__isnull=False, archived_at__isnull=True
    ).first()
    if funnel is None:
        return None
    steps = funnel.steps.order_by("position", "id")
    step = steps.filter(slug=step_slug).first() if step_slug else steps.first()
    if step is None:
        return None
    page = (
        Page.objects.filter(step=step, published_version__isnull=False)
        .select_related("published_version")
        .order_by("id")
        .first()
    )
    return page.published_version if page else None


def live_ref_key(funnel_slug: str, step_slug: str | None) -> str:
    return f"of:live:{funnel_slug}:{step_slug or ''}"


def live_page_ref(*, funnel_slug: str, step_slug: str | None) -> dict | None:
    """What serving needs to know about the live page of a step, in one query."""
    qs = Page.objects.filter(
        step__funnel__slug=funnel_slug,
        step__funnel__published_at__isnull=False,
        step__funnel__archived_at__isnull=True,
        published_version__isnull=False,
    )
    if step_slug:
        qs = qs.filter(step__slug=step_slug)
    row = (
        qs.order_by("step__position", "step_id", "id")
        .values(
            "id",
            "published_version_id",
            "step_id",
            "step__funnel_id",
            "workspace_id",
            "workspace__public_id",
            "workspace__drop_ip_addresses",
        )
        .first()
    )
    if row is None:
        return None
    return {
        "page_id": row["id"],
        "version_id": row["published_version_id"],
        "step_id": row["step_id"],
        "funnel_id": row["step__funnel_id"],
        "workspace_id": row["workspace_id"],
        "workspace_public_id": row["workspace__public_id"],
        "drop_ip": row["workspace__drop_ip_addresses"],
    }


def version_html(*, version_id: int) -> str:
    return PageVersion.objects.values_list("html", flat=True).get(pk=version_id)
