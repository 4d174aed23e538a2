"""API v1: funnels (list, detail with steps and graph), products and offers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from accounts.apikit import (
    ApiConflict,
    ErrorOut,
    SyncQuery,
    cursor_list,
    page_schema,
    workspace_of,
)

from . import offers, paths, selectors, services
from .models import Funnel, Product, Step, StepOffer

router = Router(tags=["Funnels"])
ERRORS: dict[int, type[Schema]] = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    429: ErrorOut,
}


class FunnelListQuery(SyncQuery):
    archived: bool = Field(False, description="List archived funnels instead")


class FunnelOut(Schema):
    id: int
    name: str
    slug: str
    published: bool
    published_at: datetime | None
    archived: bool
    created_at: datetime
    updated_at: datetime


def _funnel_fields(funnel: Funnel) -> dict:
    return {
        "id": funnel.pk,
        "name": funnel.name,
        "slug": funnel.slug,
        "published": funnel.published_at is not None,
        "published_at": funnel.published_at,
        "archived": funnel.archived_at is not None,
        "created_at": funnel.created_at,
        "updated_at": funnel.updated_at,
    }


FunnelPage = page_schema("FunnelPage", FunnelOut)


class StepOut(Schema):
    id: int
    name: str
    slug: str
    kind: str
    position: int
    accept_target: int | None = Field(description="Upsell/downsell: step on accept")
    decline_target: int | None = Field(description="Upsell/downsell: step on decline")


def step_out(step: Step) -> StepOut:
    return StepOut(
        id=step.pk,
        name=step.name,
        slug=step.slug,
        kind=step.kind,
        position=step.position,
        accept_target=step.accept_target_id,
        decline_target=step.decline_target_id,
    )


class GraphNode(Schema):
    step: int
    branch: bool = Field(description="Reached only through an upsell's decline")


class GraphEdge(Schema):
    """A way on from a step: ``next`` on submit, or an upsell's accept / decline."""

    source: int
    target: int
    kind: Literal["next", "accept", "decline"]


class FunnelGraph(Schema):
    entry_step: int | None
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class FunnelDetailOut(FunnelOut):
    steps: list[StepOut]
    graph: FunnelGraph


def funnel_detail(funnel: Funnel) -> FunnelDetailOut:
    steps = selectors.step_list(funnel=funnel)
    answers = paths.FunnelPaths(steps)
    return FunnelDetailOut(
        **_funnel_fields(funnel),
        steps=[step_out(s) for s in steps],
        graph=FunnelGraph(
            entry_step=answers.entry.pk if answers.entry else None,
            nodes=[
                GraphNode(step=s.pk, branch=s.pk in answers.branch_only) for s in steps
            ],
            edges=[
                GraphEdge(
                    source=way.step.pk,
                    target=way.target.pk,
                    kind=way.outcome or "next",  # type: ignore[arg-type]
                )
                for s in steps
                for way in answers.ways(s)
                if way.target is not None
            ],
        ),
    )


def funnel_or_404(request: HttpRequest, funnel_id: int) -> Funnel:
    return get_object_or_404(
        Funnel.objects.for_workspace(workspace_of(request)), pk=funnel_id
    )


@router.get("/funnels", response={200: FunnelPage, **ERRORS}, summary="List funnels")
def funnel_list(request: HttpRequest, query: Query[FunnelListQuery]) -> dict:
    qs = selectors.funnel_list(workspace=workspace_of(request), archived=query.archived)
    return cursor_list(qs, query, out=lambda f: FunnelOut(**_funnel_fields(f)))


@router.get(
    "/funnels/{funnel_id}",
    response={200: FunnelDetailOut, **ERRORS},
    summary="A funnel with its steps and graph",
)
def funnel_get(request: HttpRequest, funnel_id: int) -> FunnelDetailOut:
    return funnel_detail(funnel_or_404(request, funnel_id))


# ---------------------------------------------------------------- products
class ProductOut(Schema):
    id: int
    name: str
    description: str
    image_url: str
    price_minor: int = Field(description="Price in minor units (cents)")
    currency: str
    billing: str
    interval: str
    archived: bool
    created_at: datetime
    updated_at: datetime


def product_out(product: Product) -> ProductOut:
    return ProductOut(
        id=product.pk,
        name=product.name,
        description=product.description,
        image_url=product.image_url,
        price_minor=product.price_minor,
        currency=product.currency,
        billing=product.billing,
        interval=product.interval,
        archived=product.archived_at is not None,
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


ProductPage = page_schema("ProductPage", ProductOut)


class ProductIn(Schema):
    name: str = Field(min_length=1, max_length=120)
    description: str = ""
    image_url: str = Field("", max_length=500)
    price_minor: int = Field(ge=0, description="Price in minor units (cents)")
    currency: str = Field("USD", min_length=3, max_length=3)
    billing: Literal["one_time", "subscription"] = "one_time"
    interval: Literal["", "month", "year"] = ""


class ProductPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=120)
    description: str | None = None
    image_url: str | None = Field(None, max_length=500)
    price_minor: int | None = Field(None, ge=0)
    currency: str | None = Field(None, min_length=3, max_length=3)
    billing: Literal["one_time", "subscription"] | None = None
    interval: Literal["", "month", "year"] | None = None
    archived: bool | None = None


class ProductListQuery(SyncQuery):
    archived: bool = Field(False, description="List archived products instead")


def product_or_404(request: HttpRequest, product_id: int) -> Product:
    return get_object_or_404(
        Product.objects.for_workspace(workspace_of(request)), pk=product_id
    )


@router.get(
    "/products",
    response={200: ProductPage, **ERRORS},
    tags=["Products"],
    summary="List products",
)
def product_list(request: HttpRequest, query: Query[ProductListQuery]) -> dict:
    qs = Product.objects.for_workspace(workspace_of(request)).filter(
        archived_at__isnull=not query.archived
    )
    return cursor_list(qs, query, out=product_out)


@router.post(
    "/products",
    response={201: ProductOut, **ERRORS},
    tags=["Products"],
    summary="Create a product",
)
def product_create(request: HttpRequest, payload: ProductIn) -> Status:
    values = payload.model_dump()
    values["currency"] = values["currency"].upper()
    product = services.product_save(workspace=workspace_of(request), **values)
    return Status(201, product_out(product))


@router.get(
    "/products/{product_id}",
    response={200: ProductOut, **ERRORS},
    tags=["Products"],
    summary="A product",
)
def product_get(request: HttpRequest, product_id: int) -> ProductOut:
    return product_out(product_or_404(request, product_id))


@router.patch(
    "/products/{product_id}",
    response={200: ProductOut, **ERRORS},
    tags=["Products"],
    summary="Change a product (only the fields sent)",
)
def product_update(
    request: HttpRequest, product_id: int, payload: ProductPatch
) -> ProductOut:
    product = product_or_404(request, product_id)
    values = payload.model_dump(exclude_unset=True)
    archived = values.pop("archived", None)
    if values.get("currency"):
        values["currency"] = values["currency"].upper()
    if values:
        product = services.product_save(
            workspace=workspace_of(request), product=product, **values
        )
    if archived is not None:
        product = services.product_archive(product=product, archived=archived)
    return product_out(product)


# ---------------------------------------------------------------- offers
class OfferOut(Schema):
    step: int
    step_name: str
    step_kind: str
    product: ProductOut | None
    bump_product: ProductOut | None
    bump_headline: str
    bump_description: str
    changes_not_published: bool = Field(
        description="The funnel is live and its page still shows and charges the "
        "offer it was published with: publish the funnel to put this one live"
    )


def _selling_steps(funnel: Funnel) -> list[Step]:
    return list(
        funnel.steps.filter(kind__in=offers.SELLING_KINDS).order_by("position", "id")
    )


def _offers_out(funnel: Funnel, steps: list[Step]) -> list[OfferOut]:
    current = {
        o.step_id: o
        for o in StepOffer.objects.filter(step__in=steps).select_related(
            "product", "bump_product"
        )
    }
    unpublished = {s.pk for s in selectors.funnel_offers_unpublished(funnel=funnel)}
    out: list[OfferOut] = []
    for step in steps:
        offer = current.get(step.pk)
        out.append(
            OfferOut(
                step=step.pk,
                step_name=step.name,
                step_kind=step.kind,
                product=product_out(offer.product) if offer else None,
                bump_product=(
                    product_out(offer.bump_product)
                    if offer and offer.bump_product
                    else None
                ),
                bump_headline=offer.bump_headline if offer else "",
                bump_description=offer.bump_description if offer else "",
                changes_not_published=step.pk in unpublished,
            )
        )
    return out


@router.get(
    "/funnels/{funnel_id}/offers",
    response={200: list[OfferOut], **ERRORS},
    tags=["Products"],
    summary="What each order, upsell and downsell step sells",
)
def funnel_offers(request: HttpRequest, funnel_id: int) -> list[OfferOut]:
    funnel = funnel_or_404(request, funnel_id)
    return _offers_out(funnel, _selling_steps(funnel))


class OfferFields(Schema):
    product: int = Field(description="The product the step sells")
    bump_product: int | None = Field(
        None, description="An order bump (order form steps), or null"
    )
    bump_headline: str = Field("", max_length=200)
    bump_description: str = Field("", max_length=2000)


class OfferIn(OfferFields):
    step: int = Field(description="An order form, upsell or downsell step")


class OfferPatch(Schema):
    product: int | None = None
    bump_product: int | None = None
    bump_headline: str | None = Field(None, max_length=200)
    bump_description: str | None = Field(None, max_length=2000)


def _product_ref(request: HttpRequest, field: str, pk: int | None) -> Product | None:
    """A product the body names: another workspace's is as unknown as a missing
    one (a 400 naming the field: the request, not the URL, is wrong)."""
    if pk is None:
        return None
    found = Product.objects.for_workspace(workspace_of(request)).filter(pk=pk).first()
    if found is None:
        raise ValidationError({field: f"No product {pk} in this workspace."})
    return found


def _offer_save(request: HttpRequest, step: Step, values: dict) -> Status:
    product = _product_ref(request, "product", values["product"])
    if product is None:
        raise ValidationError({"product": "Choose the product the step sells."})
    _offer, created = services.step_offer_save(
        step=step,
        product=product,
        bump_product=_product_ref(request, "bump_product", values["bump_product"]),
        bump_headline=values["bump_headline"],
        bump_description=values["bump_description"],
    )
    (out,) = _offers_out(step.funnel, [step])
    return Status(201 if created else 200, out)


@router.post(
    "/funnels/{funnel_id}/offers",
    response={201: OfferOut, 409: ErrorOut, **ERRORS},
    tags=["Products"],
    summary="Set what a step sells (its first offer)",
    description="A step has one offer: a step that already has one answers 409 "
    "(change it with PATCH). On a published funnel the live page keeps its "
    "offer until the funnel is published again (`changes_not_published`).",
)
def offer_create(request: HttpRequest, funnel_id: int, payload: OfferIn) -> Status:
    funnel = funnel_or_404(request, funnel_id)
    with transaction.atomic():
        # Locked, so that of two concurrent creates the second gets the 409.
        step = funnel.steps.select_for_update().filter(pk=payload.step).first()
        if step is None:
            raise ValidationError({"step": f"No step {payload.step} in this funnel."})
        if StepOffer.objects.filter(step=step).exists():
            raise ApiConflict(
                f"“{step.name}” already has an offer: change it with "
                f"PATCH /api/v1/funnels/{funnel.pk}/offers/{step.pk}."
            )
        return _offer_save(request, step, payload.model_dump(exclude={"step"}))


@router.patch(
    "/funnels/{funnel_id}/offers/{step_id}",
    response={200: OfferOut, **ERRORS},
    tags=["Products"],
    summary="Change a step's offer (only the fields sent)",
    description="On a published funnel the live page keeps its offer until the "
    "funnel is published again (`changes_not_published`).",
)
def offer_update(
    request: HttpRequest, funnel_id: int, step_id: int, payload: OfferPatch
) -> Status:
    funnel = funnel_or_404(request, funnel_id)
    step = get_object_or_404(funnel.steps, pk=step_id)
    offer = get_object_or_404(StepOffer, step=step)
    values = {
        "product": offer.product_id,
        "bump_product": offer.bump_product_id,
        "bump_headline": offer.bump_headline,
        "bump_description": offer.bump_description,
    }
    sent = payload.model_dump(exclude_unset=True)
    for key in ("product", "bump_headline", "bump_description"):
        if key in sent and sent[key] is None:
            raise ValidationError({key: "Send a value or leave the field out."})
    values.update(sent)
    return _offer_save(request, step, values)
