"""Deleting a workspace that has sold something: everything it owns goes, its
audit log included, another workspace keeps all of its own, and a product or a
lead that something still points at cannot be deleted on its own."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import RestrictedError

from accounts import services
from accounts.actors import Actor, acting_as
from accounts.models import AuditEntry, Workspace
from funnels import services as funnel_services
from funnels.models import Product, PublishedOffer, StepOffer
from leads.models import Lead, Order, OrderItem, Payment
from tests.factories import FunnelFactory, ProductFactory, StepFactory, offers_freeze

pytestmark = pytest.mark.django_db


def _shop(workspace) -> Product:
    """A published order form with a bump, one paid order, an audit entry."""
    funnel = FunnelFactory(workspace=workspace)
    step = StepFactory(funnel=funnel, kind="order", position=0)
    product = ProductFactory(workspace=workspace, price_minor=2700)
    bump = ProductFactory(workspace=workspace, price_minor=900)
    StepOffer.objects.create(
        workspace=workspace, step=step, product=product, bump_product=bump
    )
    offers_freeze(funnel)
    lead = Lead.objects.create(workspace=workspace, email="buyer@x.io")
    order = Order.objects.create(workspace=workspace, lead=lead, currency="USD")
    OrderItem.objects.create(
        workspace=workspace,
        order=order,
        product=product,
        kind="main",
        name=product.name,
        amount_minor=2700,
    )
    Payment.objects.create(
        workspace=workspace,
        order=order,
        kind="charge",
        idempotency_key=f"{order.public_id}:checkout",
        amount_minor=2700,
        currency="USD",
        status="succeeded",
    )
    with acting_as(Actor(label="test")), transaction.atomic():
        services.audit_record(workspace=workspace, action="funnel.publish")
    return product


def _counts(workspace) -> dict[str, int]:
    return {
        model.__name__: model.objects.filter(workspace=workspace).count()
        for model in (Product, StepOffer, PublishedOffer, Order, OrderItem, AuditEntry)
    }


def test_a_workspace_that_sold_something_can_be_deleted(workspace, other_workspace):
    _shop(workspace)
    _shop(other_workspace)
    kept = _counts(other_workspace)
    workspace_pk = workspace.pk

    services.workspace_delete(workspace=workspace)

    assert not Workspace.objects.filter(pk=workspace_pk).exists()
    assert all(n == 0 for n in _counts(workspace_pk).values())
    assert _counts(other_workspace) == kept
    assert all(n > 0 for n in kept.values())


def test_what_is_still_used_cannot_be_deleted_alone(workspace):
    product = _shop(workspace)
    with pytest.raises(RestrictedError), transaction.atomic():
        funnel_services.product_delete(product=product)
    with pytest.raises(RestrictedError), transaction.atomic():
        Lead.objects.filter(workspace=workspace).delete()
    assert Product.objects.filter(pk=product.pk).exists()
    assert Lead.objects.filter(workspace=workspace).count() == 1
