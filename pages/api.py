"""API v1: funnel templates, creating a funnel from one, publishing, page documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import Http404, HttpRequest
from ninja import Field, Router, Schema
from ninja.responses import Status

from accounts.apikit import workspace_of
from funnels import services as funnel_services
from funnels.api import ERRORS, FunnelDetailOut, funnel_detail, funnel_or_404
from funnels.models import Funnel

from . import selectors, services
from .models import Page, PageVersion

router = Router(tags=["Funnels"])


class TemplateOut(Schema):
    key: str
    name: str
    description: str
    steps: list[str] = Field(description="The template's step names, in order")


@router.get(
    "/funnel-templates",
    response={200: list[TemplateOut], **ERRORS},
    summary="Templates a funnel can be created from",
)
def template_list(request: HttpRequest) -> list[TemplateOut]:
    return [
        TemplateOut(
            key=key,
            name=t["name"],
            description=t.get("description", ""),
            steps=[s["name"] for s in t["steps"]],
        )
        for key, t in selectors.funnel_templates().items()
    ]


class FunnelCreateIn(Schema):
    name: str = Field("", max_length=120, description="Defaults to the template's")


@router.post(
    "/funnel-templates/{template}/funnels",
    response={201: FunnelDetailOut, **ERRORS},
    summary="Create a funnel from a template",
    description="`template` is a key from /funnel-templates, or `blank` for a "
    "funnel without steps.",
)
def funnel_create(
    request: HttpRequest, template: str, payload: FunnelCreateIn
) -> Status:
    workspace = workspace_of(request)
    funnel: Funnel
    if template == "blank":
        funnel = funnel_services.funnel_create(
            workspace=workspace, name=payload.name or "Untitled funnel"
        )
    else:
        if selectors.funnel_template(key=template) is None:
            raise Http404
        funnel = services.funnel_create_from_template(
            workspace=workspace, user=None, template_key=template, name=payload.name
        )
    return Status(201, funnel_detail(funnel))


class VersionOut(Schema):
    page: int
    number: int
    created_at: datetime


class PublishOut(Schema):
    funnel: int
    published: bool
    published_at: datetime | None
    versions: list[VersionOut]


def _publish(funnel: Funnel) -> PublishOut:
    versions = services.funnel_publish(funnel=funnel, user=None)
    funnel.refresh_from_db(fields=["published_at"])
    return PublishOut(
        funnel=funnel.pk,
        published=True,
        published_at=funnel.published_at,
        versions=[
            VersionOut(page=v.page_id, number=v.number, created_at=v.created_at)
            for v in versions
        ],
    )


@router.post(
    "/funnels/{funnel_id}/publish",
    response={200: PublishOut, **ERRORS},
    summary="Publish every page of the funnel",
)
def funnel_publish(request: HttpRequest, funnel_id: int) -> PublishOut:
    return _publish(funnel_or_404(request, funnel_id))


@router.post(
    "/funnels/{funnel_id}/unpublish",
    response={200: PublishOut, **ERRORS},
    summary="Take the funnel offline (its pages answer 404)",
)
def funnel_unpublish(request: HttpRequest, funnel_id: int) -> PublishOut:
    funnel = services.funnel_unpublish(funnel=funnel_or_404(request, funnel_id))
    return PublishOut(funnel=funnel.pk, published=False, published_at=None, versions=[])


# ---------------------------------------------------------------- pages
class PublishedOut(Schema):
    number: int
    created_at: datetime
    document: dict[str, Any]


class PageSummaryOut(Schema):
    id: int
    step: int
    name: str
    weight: int
    archived: bool
    published_version: int | None = Field(description="Number of the live version")
    updated_at: datetime


class PageOut(PageSummaryOut):
    funnel: int
    title: str
    meta_description: str
    noindex: bool
    draft_revision: int
    document: dict[str, Any] = Field(description="The draft: sections → rows → blocks")
    published: PublishedOut | None


def _summary(page: Page, version: PageVersion | None) -> dict[str, Any]:
    return {
        "id": page.pk,
        "step": page.step_id,
        "name": page.name,
        "weight": page.weight,
        "archived": page.archived_at is not None,
        "published_version": version.number if version else None,
        "updated_at": page.updated_at,
    }


@router.get(
    "/funnels/{funnel_id}/pages",
    response={200: list[PageSummaryOut], **ERRORS},
    tags=["Pages"],
    summary="The funnel's pages (split-test variants included), by step",
)
def funnel_pages(request: HttpRequest, funnel_id: int) -> list[PageSummaryOut]:
    funnel = funnel_or_404(request, funnel_id)
    pages = (
        Page.objects.filter(step__funnel=funnel)
        .select_related("published_version")
        .defer("document", "published_version__html", "published_version__document")
        .order_by("step__position", "step_id", "id")
    )
    return [PageSummaryOut(**_summary(p, p.published_version)) for p in pages]


@router.get(
    "/pages/{page_id}",
    response={200: PageOut, **ERRORS},
    tags=["Pages"],
    summary="A page's draft document and its live version",
)
def page_get(request: HttpRequest, page_id: int) -> PageOut:
    page = selectors.page_get(workspace=workspace_of(request), pk=page_id)
    version = (
        PageVersion.objects.filter(pk=page.published_version_id or 0)
        .defer("html")
        .first()
    )
    return PageOut(
        **_summary(page, version),
        funnel=page.step.funnel_id,
        title=page.title,
        meta_description=page.meta_description,
        noindex=page.noindex,
        draft_revision=page.draft_revision,
        document=page.document,
        published=(
            PublishedOut(
                number=version.number,
                created_at=version.created_at,
                document=version.document,
            )
            if version
            else None
        ),
    )


@router.post(
    "/pages/{page_id}/publish",
    response={200: PublishOut, **ERRORS},
    tags=["Pages"],
    summary="Publish the page (with its funnel, as the editor's Publish button does)",
    description="Pages link to each other (forms go to the next step), so a page "
    "is published together with the rest of its funnel.",
)
def page_publish(request: HttpRequest, page_id: int) -> PublishOut:
    page = selectors.page_get(workspace=workspace_of(request), pk=page_id)
    return _publish(page.step.funnel)
