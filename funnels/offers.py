"""Offers as the visitor sees them: frozen at publishing, compared with the current
offer to notice unpublished changes, and the merge fields page copy can insert
(``{{offer.price}}``) so copy cannot drift from prices."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from .models import BRANCHING_KINDS, PublishedOffer, Step, StepKind, StepOffer
from .money import format_money

SELLING_KINDS = frozenset({StepKind.ORDER, *BRANCHING_KINDS})


def offer_fingerprint(offer: StepOffer | None) -> str:
    """A hash of everything about a step's offer that its page shows or charges."""
    if offer is None:
        return ""

    def product(p) -> list[Any] | None:
        if p is None:
            return None
        archived = p.archived_at is not None
        return [p.pk, p.name, p.price_minor, p.compare_at_minor, p.currency, archived]

    raw = [
        product(offer.product),
        product(offer.bump_product),
        offer.bump_headline,
        offer.bump_description,
    ]
    return hashlib.sha256(json.dumps(raw, default=str).encode()).hexdigest()


def offer_snapshot(offer: StepOffer) -> PublishedOffer:
    """An unsaved frozen copy of ``offer`` (the editor previews with it)."""
    bump = offer.bump_product
    return PublishedOffer(
        workspace_id=offer.workspace_id,
        step_id=offer.step_id,
        product=offer.product,
        name=offer.product.name,
        price_minor=offer.product.price_minor,
        compare_at_minor=offer.product.compare_at_minor,
        currency=offer.product.currency,
        bump_product=bump,
        bump_name=bump.name if bump else "",
        bump_price_minor=bump.price_minor if bump else None,
        bump_compare_at_minor=bump.compare_at_minor if bump else None,
        bump_headline=offer.bump_headline,
        bump_description=offer.bump_description,
        fingerprint=offer_fingerprint(offer),
    )


def current_offer(step: Step) -> StepOffer | None:
    return (
        StepOffer.objects.select_related("product", "bump_product")
        .filter(step_id=step.pk)
        .first()
    )


def offer_problem(step: Step, offer: StepOffer | None) -> str:
    """Why this selling step cannot be published ("" when it can)."""
    if step.kind not in SELLING_KINDS:
        return ""
    if offer is None:
        return f"“{step.name}” sells nothing yet: choose its product."
    if offer.product.archived_at is not None:
        return f"“{step.name}” sells an archived product ({offer.product.name})."
    bump = offer.bump_product
    if bump is not None and bump.archived_at is not None:
        return f"“{step.name}” has an archived order bump ({bump.name})."
    if bump is not None and bump.currency != offer.product.currency:
        return f"“{step.name}”: the bump is priced in another currency."
    return ""


# Merge fields -------------------------------------------------------------------

MERGE_FIELDS = {
    "offer.name": "the product's name",
    "offer.price": "its price",
    "offer.regular_price": "its regular price",
    "offer.savings": "regular price minus price",
    "bump.name": "the order bump's name",
    "bump.price": "the bump's price",
    "bump.regular_price": "the bump's regular price",
    "bump.savings": "the bump's regular price minus its price",
}
MERGE_RE = re.compile(r"\{\{\s*((?:offer|bump)\.[a-z_]+)\s*\}\}")


def merge_values(offer: PublishedOffer | None) -> dict[str, str]:
    """What each merge field reads for this frozen offer ("" when not set)."""
    if offer is None:
        return {}

    def money(value: int | None) -> str:
        return format_money(value, offer.currency) if value is not None else ""

    def savings(regular: int | None, price: int | None) -> str:
        if regular is None or price is None or regular <= price:
            return ""
        return money(regular - price)

    return {
        "offer.name": offer.name,
        "offer.price": money(offer.price_minor),
        "offer.regular_price": money(offer.compare_at_minor),
        "offer.savings": savings(offer.compare_at_minor, offer.price_minor),
        "bump.name": offer.bump_name,
        "bump.price": money(offer.bump_price_minor),
        "bump.regular_price": money(offer.bump_compare_at_minor),
        "bump.savings": savings(offer.bump_compare_at_minor, offer.bump_price_minor),
    }


def merge(text: str, values: Mapping[str, str], *, placeholder: bool = False) -> str:
    """Replace ``{{offer.price}}`` and friends. Unknown or unset fields read ""
    on a live page, and a visible ``[offer.price]`` in the editor."""
    if "{{" not in text:
        return text

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        value = values.get(key, "")
        if not value and placeholder:
            return f"[{key}]"
        return value

    return MERGE_RE.sub(sub, text)
