"""Writes for funnels and their steps. Views, tasks and commands all call these."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Workspace
from accounts.services import audit_record

from . import offers
from .models import (
    BRANCHING_KINDS,
    Funnel,
    Product,
    PublishedOffer,
    Stage,
    Step,
    StepKind,
    StepOffer,
)


# The public route table answers these first path segments itself (uploaded images
# and static files), so no funnel may take them. Everything else is free: funnels
# live on their workspace's own host, never beside the app's routes.
def _reserved_slugs() -> frozenset[str]:
    return frozenset(
        url.strip("/").split("/", 1)[0]
        for url in (settings.STATIC_URL, settings.MEDIA_URL)
        if url and url.strip("/")
    )


SLUG_MAX = 80


def _clean_slug(value: str, *, field: str) -> str:
    slug = slugify(value or "")[:SLUG_MAX].strip("-")
    if not slug:
        raise ValidationError({field: "Use at least one letter or digit."})
    return slug


def _suggest(base: str, is_free: Callable[[str], bool]) -> str:
    base = base[: SLUG_MAX - 4].strip("-") or "funnel"
    for n in range(2, 10_000):
        candidate = f"{base}-{n}"
        if is_free(candidate):
            return candidate
    raise ValidationError("No free address could be found; pick another one.")


def _funnel_slug_free(
    slug: str, *, workspace: Workspace, exclude_pk: int | None = None
) -> bool:
    if slug in _reserved_slugs():
        return False
    qs = Funnel.objects.filter(workspace=workspace, slug=slug)
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return not qs.exists()


def funnel_slug_suggest(
    *, workspace: Workspace, value: str, exclude: Funnel | None = None
) -> str:
    """The slug to use for ``value``: itself when free, else the first free ``-n``."""
    slug = slugify(value or "")[:SLUG_MAX].strip("-") or "funnel"
    exclude_pk = exclude.pk if exclude else None

    def free(candidate: str) -> bool:
        return _funnel_slug_free(candidate, workspace=workspace, exclude_pk=exclude_pk)

    return slug if free(slug) else _suggest(slug, free)


def _check_funnel_slug(
    slug: str, *, workspace: Workspace, exclude: Funnel | None = None
) -> None:
    exclude_pk = exclude.pk if exclude else None
    if _funnel_slug_free(slug, workspace=workspace, exclude_pk=exclude_pk):
        return
    suggestion = funnel_slug_suggest(workspace=workspace, value=slug, exclude=exclude)
    if slug in _reserved_slugs():
        msg = f"“{slug}” is reserved for files — try {suggestion}."
    else:
        msg = f"{slug} is taken — try {suggestion}."
    raise ValidationError({"slug": msg}, code="slug_taken")


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give it a name."})
    if len(name) > 120:
        raise ValidationError({"name": "Keep the name under 120 characters."})
    return name


@transaction.atomic
def funnel_create(*, workspace: Workspace, name: str, slug: str = "") -> Funnel:
    name = _clean_name(name)
    if slug:
        slug = _clean_slug(slug, field="slug")
        _check_funnel_slug(slug, workspace=workspace)
    else:
        slug = funnel_slug_suggest(workspace=workspace, value=name)
    return Funnel.objects.create(workspace=workspace, name=name, slug=slug)


@transaction.atomic
def funnel_rename(*, funnel: Funnel, name: str) -> Funnel:
    funnel.name = _clean_name(name)
    funnel.save(update_fields=["name", "updated_at"])
    return funnel


@transaction.atomic
def funnel_set_slug(*, funnel: Funnel, slug: str) -> Funnel:
    slug = _clean_slug(slug, field="slug")
    _check_funnel_slug(slug, workspace=funnel.workspace, exclude=funnel)
    funnel.slug = slug
    funnel.save(update_fields=["slug", "updated_at"])
    return funnel


@transaction.atomic
def funnel_duplicate(
    *, funnel: Funnel, name: str = ""
) -> tuple[Funnel, dict[int, int]]:
    """Copy a funnel and its steps (with branch targets remapped).

    Returns the new funnel and ``{old step id: new step id}`` so that other apps (page
    copying) can follow along. The copy is a draft and not archived.
    """
    new_name = _clean_name(name or f"{funnel.name} (copy)"[:120])
    copy = Funnel.objects.create(
        workspace=funnel.workspace,
        name=new_name,
        slug=funnel_slug_suggest(
            workspace=funnel.workspace, value=f"{funnel.slug}-copy"
        ),
    )
    old_steps = list(funnel.steps.order_by("position", "id"))
    mapping: dict[int, int] = {}
    new_by_old: dict[int, Step] = {}
    for old in old_steps:
        new = Step.objects.create(
            workspace=copy.workspace,
            funnel=copy,
            name=old.name,
            slug=old.slug,
            kind=old.kind,
            position=old.position,
        )
        mapping[old.pk] = new.pk
        new_by_old[old.pk] = new
    for old in old_steps:
        if old.accept_target_id or old.decline_target_id:
            new = new_by_old[old.pk]
            new.accept_target_id = mapping.get(old.accept_target_id or 0)
            new.decline_target_id = mapping.get(old.decline_target_id or 0)
            new.save(update_fields=["accept_target", "decline_target"])
    return copy, mapping


@transaction.atomic
def funnel_archive(*, funnel: Funnel) -> Funnel:
    if funnel.archived_at is None:
        funnel.archived_at = timezone.now()
        funnel.save(update_fields=["archived_at", "updated_at"])
    return funnel


@transaction.atomic
def funnel_unarchive(*, funnel: Funnel) -> Funnel:
    if funnel.archived_at is not None:
        funnel.archived_at = None
        funnel.save(update_fields=["archived_at", "updated_at"])
    return funnel


@transaction.atomic
def funnel_delete(*, funnel: Funnel, confirm_name: str) -> None:
    """Delete a funnel and everything in it; the caller must type its exact name."""
    if (confirm_name or "").strip() != funnel.name:
        raise ValidationError(
            {"confirm_name": f"Type the funnel name “{funnel.name}” to confirm."}
        )
    audit_record(
        workspace=funnel.workspace_id,
        action="funnel.delete",
        target=funnel,
        before={"name": funnel.name, "slug": funnel.slug},
    )
    funnel.delete()


# -- steps ------------------------------------------------------------------------


def _step_slug_free(funnel: Funnel, slug: str, *, exclude_pk: int | None) -> bool:
    qs = Step.objects.filter(funnel=funnel, slug=slug)
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return not qs.exists()


def step_slug_suggest(
    *, funnel: Funnel, value: str, exclude: Step | None = None
) -> str:
    slug = slugify(value or "")[:SLUG_MAX].strip("-") or "step"
    exclude_pk = exclude.pk if exclude else None
    if _step_slug_free(funnel, slug, exclude_pk=exclude_pk):
        return slug
    return _suggest(slug, lambda s: _step_slug_free(funnel, s, exclude_pk=exclude_pk))


def _check_step_slug(funnel: Funnel, slug: str, *, exclude: Step | None) -> None:
    if _step_slug_free(funnel, slug, exclude_pk=exclude.pk if exclude else None):
        return
    suggestion = step_slug_suggest(funnel=funnel, value=slug, exclude=exclude)
    raise ValidationError(
        {"slug": f"{slug} is taken in this funnel — try {suggestion}."},
        code="slug_taken",
    )


def _check_target(step: Step, target: Step | None, field: str) -> None:
    if target is None:
        return
    if target.funnel_id != step.funnel_id:
        raise ValidationError({field: "Pick a step of this funnel."})
    if step.pk is not None and target.pk == step.pk:
        raise ValidationError({field: "A step cannot lead to itself."})


@transaction.atomic
def step_create(*, funnel: Funnel, kind: str, name: str = "", slug: str = "") -> Step:
    if kind not in StepKind.values:
        raise ValidationError({"kind": "Pick a kind of step."})
    name = _clean_name(name or StepKind(kind).label)
    if slug:
        slug = _clean_slug(slug, field="slug")
        _check_step_slug(funnel, slug, exclude=None)
    else:
        slug = step_slug_suggest(funnel=funnel, value=name)
    # Lock the funnel row so two concurrent adds do not take the same position.
    Funnel.objects.select_for_update().filter(pk=funnel.pk).first()
    last = funnel.steps.aggregate(m=Max("position"))["m"]
    return Step.objects.create(
        workspace=funnel.workspace,
        funnel=funnel,
        kind=kind,
        name=name,
        slug=slug,
        position=0 if last is None else last + 1,
    )


_UNSET = object()


@transaction.atomic
def step_update(
    *,
    step: Step,
    name: str | None = None,
    slug: str | None = None,
    kind: str | None = None,
    accept_target: Step | object | None = _UNSET,
    decline_target: Step | object | None = _UNSET,
    stage: str | None = None,
) -> Step:
    """Change any of a step's fields; only the keywords passed are touched
    (``stage=""``: back to the default for the step's kind)."""
    fields: list[str] = []
    if stage is not None:
        if stage and stage not in Stage.values:
            raise ValidationError({"stage": "Pick a journey stage."})
        step.stage = stage
        fields.append("stage")
    if name is not None:
        step.name = _clean_name(name)
        fields.append("name")
    if slug is not None:
        clean = _clean_slug(slug, field="slug")
        _check_step_slug(step.funnel, clean, exclude=step)
        step.slug = clean
        fields.append("slug")
    if kind is not None:
        if kind not in StepKind.values:
            raise ValidationError({"kind": "Pick a kind of step."})
        step.kind = kind
        fields.append("kind")
    if accept_target is not _UNSET:
        _check_target(step, accept_target, "accept_target")  # type: ignore[arg-type]
        step.accept_target = accept_target  # type: ignore[assignment]
        fields.append("accept_target")
    if decline_target is not _UNSET:
        _check_target(step, decline_target, "decline_target")  # type: ignore[arg-type]
        step.decline_target = decline_target  # type: ignore[assignment]
        fields.append("decline_target")
    if step.kind not in BRANCHING_KINDS and (
        step.accept_target_id or step.decline_target_id
    ):
        # Only upsells and downsells branch; a kind change drops stale targets.
        step.accept_target = None
        step.decline_target = None
        fields += ["accept_target", "decline_target"]
    if fields:
        step.save(update_fields=sorted(set(fields)))
    return step


@transaction.atomic
def step_reorder(*, funnel: Funnel, step_ids: Sequence[int]) -> list[Step]:
    """Put the funnel's steps in exactly the order given (all of them, once each)."""
    steps = {s.pk: s for s in Step.objects.select_for_update().filter(funnel=funnel)}
    ids = list(step_ids)
    if len(ids) != len(set(ids)) or set(ids) != set(steps):
        raise ValidationError(
            "The order must list every step of this funnel exactly once."
        )
    ordered = [steps[pk] for pk in ids]
    for position, step in enumerate(ordered):
        step.position = position
    Step.objects.bulk_update(ordered, ["position"])
    return ordered


@transaction.atomic
def step_move(*, step: Step, direction: str) -> list[Step]:
    """Swap a step with its neighbour ("up" or "down"); at an end it stays put."""
    if direction not in ("up", "down"):
        raise ValidationError("Move a step up or down.")
    ids = list(
        Step.objects.select_for_update()
        .filter(funnel_id=step.funnel_id)
        .order_by("position", "id")
        .values_list("pk", flat=True)
    )
    i = ids.index(step.pk)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(ids):
        ids[i], ids[j] = ids[j], ids[i]
    return step_reorder(funnel=step.funnel, step_ids=ids)


@transaction.atomic
def step_delete(*, step: Step) -> None:
    """Delete a step unless another step still leads to it."""
    referrers = list(
        Step.objects.filter(funnel_id=step.funnel_id)
        .filter(Q(accept_target=step) | Q(decline_target=step))
        .exclude(pk=step.pk)
        .order_by("position", "id")
    )
    if referrers:
        names = ", ".join(f"“{s.name}”" for s in referrers)
        raise ValidationError(
            f"“{step.name}” cannot be deleted: {names} "
            f"{'leads' if len(referrers) == 1 else 'lead'} to it. "
            "Point those steps somewhere else first.",
            code="step_referenced",
        )
    funnel_id = step.funnel_id
    position = step.position
    audit_record(
        workspace=step.workspace_id,
        action="step.delete",
        target=step,
        before={"name": step.name, "slug": step.slug, "kind": step.kind},
    )
    step.delete()
    Step.objects.filter(funnel_id=funnel_id, position__gt=position).update(
        position=F("position") - 1
    )


# ---------------------------------------------------------------- products
PRODUCT_FIELDS = (
    "name",
    "description",
    "price_minor",
    "compare_at_minor",
    "currency",
    "billing",
    "interval",
    "image_url",
)


@transaction.atomic
def product_save(
    *, workspace: Workspace, product: Product | None = None, **values: object
) -> Product:
    """Create or update a product (audited); what was sold keeps the price it was
    sold at, and a live page keeps its frozen offer until the funnel is published."""
    product = product or Product(workspace=workspace)
    if product.workspace_id != workspace.pk:
        raise ValidationError("No such product.")
    created = product.pk is None
    before = None if created else {f: getattr(product, f) for f in PRODUCT_FIELDS}
    for field in PRODUCT_FIELDS:
        if field in values:
            setattr(product, field, values[field])
    product.full_clean()
    product.save()
    after = {f: getattr(product, f) for f in PRODUCT_FIELDS}
    if created or after != before:
        audit_record(
            workspace=workspace,
            action="product.create" if created else "product.update",
            target=product,
            before=before,
            after=after,
        )
    return product


@transaction.atomic
def product_archive(*, product: Product, archived: bool = True) -> Product:
    was_archived = product.archived_at is not None
    product.archived_at = timezone.now() if archived else None
    product.save(update_fields=["archived_at", "updated_at"])
    if was_archived != archived:
        audit_record(
            workspace=product.workspace_id,
            action="product.archive" if archived else "product.unarchive",
            target=product,
            before={"archived": was_archived},
            after={"archived": archived},
        )
    return product


# Offers -------------------------------------------------------------------------


def _offer_values(offer: StepOffer | None) -> dict[str, object] | None:
    if offer is None:
        return None
    return {
        "product": offer.product_id,
        "bump_product": offer.bump_product_id,
        "bump_headline": offer.bump_headline,
        "bump_description": offer.bump_description,
    }


@transaction.atomic
def step_offer_save(
    *,
    step: Step,
    product: Product,
    bump_product: Product | None = None,
    bump_headline: str = "",
    bump_description: str = "",
) -> tuple[StepOffer, bool]:
    """Set what a selling step sells (the offer page and the API both call this);
    ``True`` when the step had no offer before. Audited. A published funnel goes on
    showing and charging its frozen offer, so the change shows as "changes not
    published" (``selectors.funnel_offers_unpublished``) until it is published."""
    if step.kind not in offers.SELLING_KINDS:
        raise ValidationError(
            {
                "step": f"“{step.name}” is a {step.get_kind_display().lower()} step; "
                "only order form, upsell and downsell steps sell a product."
            }
        )
    for field, chosen in (("product", product), ("bump_product", bump_product)):
        if chosen is None:
            continue
        if chosen.workspace_id != step.workspace_id:
            raise ValidationError({field: "No such product."})
        if chosen.archived_at is not None:
            raise ValidationError(
                {field: f"“{chosen.name}” is archived: unarchive it or choose another."}
            )
    if bump_product is not None and bump_product.currency != product.currency:
        raise ValidationError(
            {
                "bump_product": f"The bump is priced in {bump_product.currency}; the "
                f"product in {product.currency}. Use one currency per order."
            }
        )
    # The step's row is the lock: two first saves of one offer queue up.
    Step.objects.select_for_update().filter(pk=step.pk).values("pk").get()
    offer = StepOffer.objects.filter(step=step).first()
    created = offer is None
    before = _offer_values(offer)
    offer = offer or StepOffer(step=step, workspace_id=step.workspace_id)
    offer.product = product
    offer.bump_product = bump_product
    offer.bump_headline = bump_headline
    offer.bump_description = bump_description
    offer.full_clean(exclude=["step", "workspace"])
    offer.save()
    after = _offer_values(offer)
    if after != before:
        audit_record(
            workspace=step.workspace_id,
            action="offer.create" if created else "offer.update",
            target=step,
            target_label=f"Offer of “{step.name}”",
            before=before,
            after=after,
        )
    return offer, created


@transaction.atomic
def step_offer_freeze(*, step: Step) -> PublishedOffer | None:
    """Freeze the step's current offer for its live page (publishing calls this).

    An unchanged offer keeps its frozen row, so a republish does not turn away
    visitors who loaded the page before it.
    """
    offer = offers.current_offer(step)
    if step.kind not in offers.SELLING_KINDS or offer is None:
        live = None
    else:
        live = (
            PublishedOffer.objects.filter(pk=step.live_offer_id).first()
            if step.live_offer_id
            else None
        )
        fingerprint = offers.offer_fingerprint(offer)
        if live is None or live.fingerprint != fingerprint:
            live = offers.offer_snapshot(offer)
            live.save()
    if step.live_offer_id != (live.pk if live else None):
        Step.objects.filter(pk=step.pk).update(live_offer=live)
    step.live_offer = live
    return live


@transaction.atomic
def product_delete(*, product: Product) -> None:
    """Delete a product never sold nor offered (else RestrictedError: archive it)."""
    audit_record(
        workspace=product.workspace_id,
        action="product.delete",
        target=product,
        before={"name": product.name, "price_minor": product.price_minor},
    )
    product.delete()
