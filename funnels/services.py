"""Writes for funnels, steps and products."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Workspace

from .models import Product

PRODUCT_FIELDS = (
    "name",
    "description",
    "price_minor",
    "currency",
    "billing",
    "interval",
    "image_url",
)


@transaction.atomic
def product_save(
    *, workspace: Workspace, product: Product | None = None, **values: object
) -> Product:
    """Create or update a product; the price of a sold product stays as it was sold."""
    product = product or Product(workspace=workspace)
    if product.workspace_id != workspace.pk:
        raise ValidationError("No such product.")
    for field in PRODUCT_FIELDS:
        if field in values:
            setattr(product, field, values[field])
    product.full_clean()
    product.save()
    return product


@transaction.atomic
def product_archive(*, product: Product, archived: bool = True) -> Product:
    product.archived_at = timezone.now() if archived else None
    product.save(update_fields=["archived_at"])
    return product
