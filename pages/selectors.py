from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import Workspace, WorkspaceSlugAlias
from analytics import experiments
from funnels.models import Funnel, Step, StepKind

from . import speed
from .models import (
    Domain,
    FunnelTheme,
    ImageAsset,
    Page,
    PageVersion,
    SpeedBudget,
    SplitTest,
)

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


def speed_budget(*, workspace: Workspace) -> speed.Budget:
    """The workspace's budget, or the defaults when it never set one."""
    row = SpeedBudget.objects.filter(workspace=workspace).first()
    if row is None:
        return speed.Budget()
    return speed.Budget(
        mode=row.mode,
        max_html_css_kb=row.max_html_css_kb,
        max_first_view_image_kb=row.max_first_view_image_kb,
        allow_blocking_scripts=row.allow_blocking_scripts,
    )


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


TEMPLATE_ASSETS = Path(__file__).resolve().parents[1] / "static" / "img" / "templates"


def template_asset_path(name: str) -> Path | None:
    """The shipped image of a template (static/img/templates/<name>.webp)."""
    if not name.replace("-", "").isalnum():
        return None
    path = TEMPLATE_ASSETS / f"{name}.webp"
    return path if path.exists() else None


class TemplateImage:
    """A shipped template image, shaped like an ImageAsset for previews."""

    def __init__(self, name: str) -> None:
        from django.templatetags.static import static
        from PIL import Image

        path = template_asset_path(name)
        self.url = static(f"img/templates/{name}.webp") if path else ""
        self.srcset = ""
        self.alt_text = ""
        self.width, self.height = Image.open(path).size if path else (0, 0)

    def url_at(self, width: int) -> str:
        return self.url


def template_preview_document(doc: dict[str, Any]) -> tuple[dict, dict]:
    """A template document with its shipped images numbered for a preview render,
    and those images by number."""
    import copy

    from .documents import iter_blocks

    doc = copy.deepcopy(doc)
    images: dict[int, TemplateImage] = {}
    numbers: dict[str, int] = {}
    for block in iter_blocks(doc):
        name = block.get("settings", {}).pop("asset", None)
        if name and template_asset_path(name):
            if name not in numbers:
                numbers[name] = len(numbers) + 1
                images[numbers[name]] = TemplateImage(name)
            block["settings"]["image_id"] = numbers[name]
    return doc, images


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


def _servable_pages() -> QuerySet[Page]:
    """Page variants that public serving may show (the split-test contract: a
    variant is served iff it has a published version and a weight above 0), of
    published, unarchived funnels."""
    return Page.objects.filter(
        step__funnel__published_at__isnull=False,
        step__funnel__archived_at__isnull=True,
        published_version__isnull=False,
        weight__gt=0,
    )


def live_page_ref(
    *, workspace_id: int, funnel_slug: str, step_slug: str | None
) -> dict | None:
    """What serving needs to know about a live step of a workspace, in one query.

    The first step (by position) that has a servable variant when ``step_slug`` is
    None. ``variants`` lists [page id, published version id, weight] by page id.
    """
    qs = _servable_pages().filter(
        workspace_id=workspace_id, step__funnel__slug=funnel_slug
    )
    if step_slug:
        qs = qs.filter(step__slug=step_slug)
    rows = list(
        qs.order_by("step__position", "step_id", "id").values_list(
            "id",
            "published_version_id",
            "weight",
            "step_id",
            "step__funnel_id",
            "workspace_id",
            "workspace__public_id",
            "workspace__drop_ip_addresses",
        )[:100]
    )
    if not rows:
        return None
    first = rows[0]
    return {
        "workspace_id": first[5],
        "workspace_public_id": str(first[6]),
        "drop_ip": first[7],
        "funnel_id": first[4],
        "funnel_slug": funnel_slug,
        "step_id": first[3],
        "variants": [[r[0], r[1], r[2]] for r in rows if r[3] == first[3]],
    }


def public_host_lookup(*, host: str, public_domain: str) -> dict | None:
    """Who serves a public host name (lower-case, no port), in one or two queries.

    ``{"kind": "subdomain", "workspace_id", "slug"}`` for <slug>.<public_domain>,
    with ``"redirect"`` set to the current slug when it is an old slug;
    ``{"kind": "domain", "workspace_id", "funnel_slug", "slug"}`` for a custom
    domain; None for anything else.
    """
    suffix = "." + public_domain
    if host.endswith(suffix):
        label = host[: -len(suffix)]
        if not label or "." in label:
            return None
        found = Workspace.objects.filter(slug=label).values_list("pk", "slug").first()
        if found is not None:
            return {"kind": "subdomain", "workspace_id": found[0], "slug": found[1]}
        alias = (
            WorkspaceSlugAlias.objects.filter(slug=label)
            .values_list("workspace_id", "workspace__slug")
            .first()
        )
        if alias is not None:
            return {
                "kind": "subdomain",
                "workspace_id": alias[0],
                "slug": alias[1],
                "redirect": alias[1],
            }
        return None
    domain = (
        Domain.objects.filter(host=host)
        .values_list("workspace_id", "funnel__slug", "workspace__slug")
        .first()
    )
    if domain is None:
        return None
    return {
        "kind": "domain",
        "workspace_id": domain[0],
        "funnel_slug": domain[1],
        "slug": domain[2],
    }


def domains_for(*, workspace: Workspace) -> QuerySet[Domain]:
    return Domain.objects.filter(workspace=workspace).select_related("funnel")


def domain_get(*, workspace: Workspace, pk: int) -> Domain:
    return get_object_or_404(Domain, workspace=workspace, pk=pk)


def domain_exists(*, host: str) -> bool:
    return Domain.objects.filter(host=host).exists()


MID_FUNNEL_KINDS = frozenset({StepKind.UPSELL, StepKind.DOWNSELL, StepKind.THANKYOU})


def sitemap_steps(*, workspace_id: int, funnel_slug: str | None = None) -> list[dict]:
    """Published steps for robots.txt / sitemap.xml, in funnel and step order.

    One dict per step with a servable variant: funnel and step slug, whether it is
    the funnel's first served step, and ``noindex`` (any servable variant asks
    for it). Upsell, downsell and thank-you steps only make sense after the steps
    before them, so they count as noindex unless a funnel starts with one.
    ``funnel_slug`` limits it to one funnel (a custom domain).
    """
    qs = _servable_pages().filter(workspace_id=workspace_id)
    if funnel_slug is not None:
        qs = qs.filter(step__funnel__slug=funnel_slug)
    rows = qs.order_by(
        "step__funnel__slug", "step__position", "step_id", "id"
    ).values_list(
        "step__funnel__slug", "step__slug", "step_id", "noindex", "step__kind"
    )
    steps: dict[int, dict] = {}
    seen_funnels: set[str] = set()
    for funnel, step, step_id, noindex, kind in rows:
        entry = steps.get(step_id)
        if entry is None:
            entry = steps[step_id] = {
                "funnel": funnel,
                "step": step,
                "first": funnel not in seen_funnels,
                "noindex": False,
            }
            seen_funnels.add(funnel)
        mid_funnel = kind in MID_FUNNEL_KINDS and not entry["first"]
        entry["noindex"] = entry["noindex"] or noindex or mid_funnel
    return list(steps.values())


def version_html(*, version_id: int) -> str:
    return PageVersion.objects.values_list("html", flat=True).get(pk=version_id)
