"""API v1: leads, orders (with refunds) and webhooks. Writes call the same
services as the admin UI (``services``, ``checkout``), never their own copies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from accounts.apikit import (
    PageQuery,
    SyncQuery,
    cursor_list,
    page_schema,
    workspace_of,
)
from funnels.api import ERRORS

from . import checkout, selectors, services
from .models import (
    Lead,
    Order,
    OrderStatus,
    Payment,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)

router = Router()


# ---------------------------------------------------------------- leads
class TouchOut(Schema):
    source: str
    medium: str
    campaign: str
    referrer: str


class LeadOut(Schema):
    id: uuid.UUID
    email: str
    first_name: str
    last_name: str
    phone: str
    fields: dict[str, Any]
    tags: list[str]
    consent: bool
    first_funnel: int | None
    first_touch: TouchOut
    last_touch: TouchOut
    submission_count: int
    erased: bool
    created_at: datetime
    updated_at: datetime


def lead_out(lead: Lead) -> LeadOut:
    return LeadOut(
        id=lead.public_id,
        email=lead.email,
        first_name=lead.first_name,
        last_name=lead.last_name,
        phone=lead.phone,
        fields=lead.fields,
        tags=sorted(t.name for t in lead.tags.all()),
        consent=lead.consent_given,
        first_funnel=lead.first_funnel_id,
        first_touch=TouchOut(
            source=lead.first_source,
            medium=lead.first_medium,
            campaign=lead.first_campaign,
            referrer=lead.first_referrer,
        ),
        last_touch=TouchOut(
            source=lead.last_source,
            medium=lead.last_medium,
            campaign=lead.last_campaign,
            referrer=lead.last_referrer,
        ),
        submission_count=lead.submission_count,
        erased=lead.erased_at is not None,
        created_at=lead.created_at,
        updated_at=lead.updated_at,
    )


LeadPage = page_schema("LeadPage", LeadOut)


class LeadListQuery(SyncQuery):
    q: str = Field("", max_length=200, description="Start of e-mail or name")
    funnel: int | None = Field(None, ge=1, description="Submitted in this funnel")
    step: int | None = Field(None, ge=1, description="Submitted on this step")
    tag: int | None = Field(None, ge=1)
    date_from: date | None = Field(None, description="Created on or after (day)")
    date_to: date | None = Field(None, description="Created on or before (day)")
    source: str = Field("", max_length=120, description="First-touch source")
    sort: Literal["newest", "oldest", "email"] = "newest"


def lead_or_404(request: HttpRequest, lead_id: uuid.UUID) -> Lead:
    return get_object_or_404(
        Lead.objects.filter(workspace=workspace_of(request))
        .select_related("first_funnel")
        .prefetch_related("tags"),
        public_id=lead_id,
    )


@router.get(
    "/leads",
    response={200: LeadPage, **ERRORS},
    tags=["Leads"],
    summary="List leads (the lead list's filters, 50 a page)",
)
def lead_list(request: HttpRequest, query: Query[LeadListQuery]) -> dict:
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise ValidationError({"date_to": "The end date is before the start date."})
    filters = selectors.LeadFilters(
        q=query.q,
        funnel_id=query.funnel,
        step_id=query.step,
        tag_id=query.tag,
        date_from=query.date_from,
        date_to=query.date_to,
        source=query.source,
        sort=query.sort,
    )
    qs = selectors.lead_queryset(workspace=workspace_of(request), filters=filters)
    return cursor_list(
        qs.prefetch_related("tags"),
        query,
        out=lead_out,
        order=selectors.SORTS[query.sort][0],
    )


class LeadUpsertIn(Schema):
    email: str = Field(max_length=254)
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=40)
    fields: dict[str, str] = Field(
        default_factory=dict, description="Custom fields, merged into the lead's"
    )
    tags: list[str] = Field(default_factory=list, description="Tags to add")


@router.post(
    "/leads",
    response={200: LeadOut, 201: LeadOut, **ERRORS},
    tags=["Leads"],
    summary="Create a lead, or update the one with this e-mail",
    description="201 when the lead was created, 200 when an existing lead (same "
    "e-mail, any case) was updated. Fields left out stay as they are.",
)
def lead_upsert(request: HttpRequest, payload: LeadUpsertIn) -> Status:
    data = payload.model_dump(exclude_unset=True)
    lead, created = services.lead_upsert(workspace=workspace_of(request), **data)
    lead = Lead.objects.prefetch_related("tags").get(pk=lead.pk)
    return Status(201 if created else 200, lead_out(lead))


class SubmissionOut(Schema):
    created_at: datetime
    funnel: int | None
    step: int | None
    data: dict[str, Any]


class LeadDetailOut(LeadOut):
    submissions: list[SubmissionOut]
    orders: list[uuid.UUID]


@router.get(
    "/leads/{lead_id}",
    response={200: LeadDetailOut, **ERRORS},
    tags=["Leads"],
    summary="A lead with its submissions and orders",
)
def lead_get(request: HttpRequest, lead_id: uuid.UUID) -> LeadDetailOut:
    lead = lead_or_404(request, lead_id)
    return LeadDetailOut(
        **lead_out(lead).model_dump(),
        submissions=[
            SubmissionOut(
                created_at=s.created_at, funnel=s.funnel_id, step=s.step_id, data=s.data
            )
            for s in selectors.lead_submissions(lead=lead)[:100]
        ],
        orders=[o.public_id for o in selectors.orders_for_lead(lead=lead)[:100]],
    )


class TagsIn(Schema):
    tags: list[str] = Field(min_length=1, max_length=20)


@router.post(
    "/leads/{lead_id}/tags",
    response={200: LeadOut, **ERRORS},
    tags=["Leads"],
    summary="Add tags to a lead",
)
def lead_tag(request: HttpRequest, lead_id: uuid.UUID, payload: TagsIn) -> LeadOut:
    lead = lead_or_404(request, lead_id)
    for name in payload.tags:
        services.leads_tag(
            workspace=workspace_of(request), lead_ids=[lead.pk], tag_name=name
        )
    return lead_out(lead_or_404(request, lead_id))


@router.get(
    "/leads/{lead_id}/export",
    response={200: dict[str, Any], **ERRORS},
    tags=["Leads"],
    summary="Everything stored about a lead (GDPR data access; audited)",
)
def lead_export(request: HttpRequest, lead_id: uuid.UUID) -> dict[str, Any]:
    return services.lead_export(lead=lead_or_404(request, lead_id))


@router.post(
    "/leads/{lead_id}/erase",
    response={200: LeadOut, **ERRORS},
    tags=["Leads"],
    summary="Erase a lead's personal data for good (GDPR; audited)",
)
def lead_erase(request: HttpRequest, lead_id: uuid.UUID) -> LeadOut:
    lead = lead_or_404(request, lead_id)
    if lead.erased_at is None:
        lead = services.lead_erase(lead=lead)
    return lead_out(lead_or_404(request, lead_id))


# ---------------------------------------------------------------- orders
class OrderItemOut(Schema):
    name: str
    kind: str
    product: int
    amount_minor: int
    status: str


class OrderLeadOut(Schema):
    id: uuid.UUID
    email: str


class OrderOut(Schema):
    id: uuid.UUID
    status: str
    currency: str
    paid_minor: int
    refunded_minor: int
    refundable_minor: int
    lead: OrderLeadOut
    funnel: int | None
    step: int | None
    items: list[OrderItemOut]
    created_at: datetime
    paid_at: datetime | None


class PaymentOut(Schema):
    kind: str
    status: str
    amount_minor: int
    created_at: datetime
    message: str


class OrderDetailOut(OrderOut):
    payments: list[PaymentOut]


def order_out(order: Order) -> dict[str, Any]:
    return {
        "id": order.public_id,
        "status": order.status,
        "currency": order.currency,
        "paid_minor": order.paid_minor,
        "refunded_minor": order.refunded_minor,
        "refundable_minor": order.paid_minor - order.refunded_minor,
        "lead": {"id": order.lead.public_id, "email": order.lead.email},
        "funnel": order.funnel_id,
        "step": order.step_id,
        "items": [
            {
                "name": i.name,
                "kind": i.kind,
                "product": i.product_id,
                "amount_minor": i.amount_minor,
                "status": i.status,
            }
            for i in order.items.all()
        ],
        "created_at": order.created_at,
        "paid_at": order.paid_at,
    }


def order_detail(order: Order) -> OrderDetailOut:
    return OrderDetailOut(
        **order_out(order),
        payments=[
            PaymentOut(
                kind=p.kind,
                status=p.status,
                amount_minor=p.amount_minor,
                created_at=p.created_at,
                message=p.message,
            )
            for p in order.payments.order_by("created_at", "id")
        ],
    )


OrderPage = page_schema("OrderPage", OrderOut)


class OrderListQuery(SyncQuery):
    funnel: int | None = Field(None, ge=1)
    product: int | None = Field(None, ge=1)
    status: Literal["paid", "failed", "partially_refunded", "refunded", ""] = ""
    show: Literal["orders", "attempts", "all"] = Field(
        "orders",
        description="orders: checkouts that paid something; attempts: declined or "
        "abandoned ones; all: both",
    )
    date_from: date | None = None
    date_to: date | None = None
    updated_since: datetime | None = Field(
        None, description="Placed, paid, abandoned or refunded at or after"
    )


def order_or_404(request: HttpRequest, order_id: uuid.UUID) -> Order:
    order = selectors.order_queryset(
        workspace=workspace_of(request), filters=selectors.OrderFilters(show="all")
    ).filter(public_id=order_id)
    return get_object_or_404(order.prefetch_related("items"))


@router.get(
    "/orders",
    response={200: OrderPage, **ERRORS},
    tags=["Orders"],
    summary="List orders (newest first)",
)
def order_list(request: HttpRequest, query: Query[OrderListQuery]) -> dict:
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise ValidationError({"date_to": "The end date is before the start date."})
    qs = selectors.order_queryset(
        workspace=workspace_of(request),
        filters=selectors.OrderFilters(
            funnel_id=query.funnel,
            product_id=query.product,
            status=query.status,
            date_from=query.date_from,
            date_to=query.date_to,
            show=query.show,
        ),
    )
    return cursor_list(
        qs.prefetch_related("items"),
        query,
        out=lambda o: OrderOut(**order_out(o)),
        since=_orders_changed_since,
    )


def _orders_changed_since(qs: QuerySet[Order], since: datetime) -> QuerySet[Order]:
    """An order changes when placed, paid, abandoned, or when a payment of it moves
    (a refund, a settled charge)."""
    paid = Payment.objects.filter(order=OuterRef("pk"), updated_at__gte=since)
    return qs.filter(
        Q(created_at__gte=since)
        | Q(paid_at__gte=since)
        | Q(abandoned_at__gte=since)
        | Exists(paid)
    )


@router.get(
    "/orders/{order_id}",
    response={200: OrderDetailOut, **ERRORS},
    tags=["Orders"],
    summary="An order with its items and payments",
)
def order_get(request: HttpRequest, order_id: uuid.UUID) -> OrderDetailOut:
    return order_detail(order_or_404(request, order_id))


class RefundIn(Schema):
    amount_minor: int = Field(gt=0, description="How much to refund, in minor units")


@router.post(
    "/orders/{order_id}/refunds",
    response={201: OrderDetailOut, **ERRORS},
    tags=["Orders"],
    summary="Refund part or all of an order through its payment gateway",
    description="Send an Idempotency-Key so that a retry never refunds twice.",
)
def order_refund(
    request: HttpRequest, order_id: uuid.UUID, payload: RefundIn
) -> Status:
    order = order_or_404(request, order_id)
    if order.status not in (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED):
        raise ValidationError(
            f"Only a paid order can be refunded; this one is {order.status}."
        )
    checkout.order_refund(
        workspace=workspace_of(request),
        order=order,
        amount_minor=payload.amount_minor,
    )
    return Status(201, order_detail(order_or_404(request, order_id)))


# ---------------------------------------------------------------- webhooks
EventName = Literal[
    "lead.created",
    "lead.updated",
    "order.created",
    "order.refunded",
    "checkout.abandoned",
]
assert set(EventName.__args__) == set(WebhookEvent.values)  # type: ignore[attr-defined]


class WebhookOut(Schema):
    id: int
    url: str
    events: list[str]
    is_active: bool
    created_at: datetime


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="Signs each delivery (shown on creation)")


class WebhookIn(Schema):
    url: str = Field(max_length=500)
    events: list[EventName] = Field(min_length=1)
    is_active: bool = True


class WebhookPatch(Schema):
    url: str | None = Field(None, max_length=500)
    events: list[EventName] | None = Field(None, min_length=1)
    is_active: bool | None = None


WebhookPage = page_schema("WebhookPage", WebhookOut)


def webhook_or_404(request: HttpRequest, webhook_id: int) -> Webhook:
    return get_object_or_404(
        selectors.webhooks_for(workspace=workspace_of(request)), pk=webhook_id
    )


@router.get(
    "/webhooks",
    response={200: WebhookPage, **ERRORS},
    tags=["Webhooks"],
    summary="List webhooks",
)
def webhook_list(request: HttpRequest, query: Query[PageQuery]) -> dict:
    return cursor_list(
        selectors.webhooks_for(workspace=workspace_of(request)),
        query,
        out=WebhookOut.model_validate,
    )


@router.post(
    "/webhooks",
    response={201: WebhookCreatedOut, **ERRORS},
    tags=["Webhooks"],
    summary="Add a webhook",
)
def webhook_create(request: HttpRequest, payload: WebhookIn) -> Status:
    hook = services.webhook_create(
        workspace=workspace_of(request),
        url=payload.url,
        events=list(payload.events),
    )
    if not payload.is_active:
        hook = services.webhook_update(webhook=hook, is_active=False)
    return Status(201, WebhookCreatedOut.model_validate(hook))


@router.get(
    "/webhooks/{webhook_id}",
    response={200: WebhookOut, **ERRORS},
    tags=["Webhooks"],
    summary="A webhook",
)
def webhook_get(request: HttpRequest, webhook_id: int) -> WebhookOut:
    return WebhookOut.model_validate(webhook_or_404(request, webhook_id))


@router.patch(
    "/webhooks/{webhook_id}",
    response={200: WebhookOut, **ERRORS},
    tags=["Webhooks"],
    summary="Change a webhook (only the fields sent)",
)
def webhook_update(
    request: HttpRequest, webhook_id: int, payload: WebhookPatch
) -> WebhookOut:
    hook = webhook_or_404(request, webhook_id)
    data = payload.model_dump(exclude_unset=True)
    for key in ("url", "events", "is_active"):
        if key in data and data[key] is None:
            raise ValidationError({key: "Send a value or leave the field out."})
    hook = services.webhook_update(webhook=hook, **data)
    return WebhookOut.model_validate(hook)


@router.delete(
    "/webhooks/{webhook_id}",
    response={204: None, **ERRORS},
    tags=["Webhooks"],
    summary="Delete a webhook",
)
def webhook_delete(request: HttpRequest, webhook_id: int) -> Status:
    services.webhook_delete(webhook=webhook_or_404(request, webhook_id))
    return Status(204, None)


class DeliveryOut(Schema):
    id: int
    webhook: int
    event: str
    event_id: uuid.UUID
    status: str
    attempts: int
    response_status: int | None
    error: str
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None


def delivery_out(d: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.pk,
        webhook=d.webhook_id,
        event=d.event,
        event_id=d.event_id,
        status=d.status,
        attempts=d.attempts,
        response_status=d.response_status,
        error=d.error,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
        next_attempt_at=d.next_attempt_at,
    )


DeliveryPage = page_schema("DeliveryPage", DeliveryOut)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response={200: DeliveryPage, **ERRORS},
    tags=["Webhooks"],
    summary="A webhook's deliveries, newest first",
)
def delivery_list(
    request: HttpRequest, webhook_id: int, query: Query[PageQuery]
) -> dict:
    hook = webhook_or_404(request, webhook_id)
    return cursor_list(
        WebhookDelivery.objects.filter(webhook=hook), query, out=delivery_out
    )


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/resend",
    response={201: DeliveryOut, **ERRORS},
    tags=["Webhooks"],
    summary="Send a delivery again (a new delivery with the same event id)",
)
def delivery_resend(request: HttpRequest, webhook_id: int, delivery_id: int) -> Status:
    hook = webhook_or_404(request, webhook_id)
    delivery = get_object_or_404(WebhookDelivery, webhook=hook, pk=delivery_id)
    copy = services.webhook_delivery_resend(delivery=delivery)
    return Status(201, delivery_out(copy))
